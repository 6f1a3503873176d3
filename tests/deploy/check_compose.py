#!/usr/bin/env python3
"""Checks docker-compose.yaml without Docker: the Compose Specification schema, then semantics.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tests/deploy/check_compose.py [path/to/docker-compose.yaml]

1. Schema: the file must validate against tests/deploy/compose-spec.json, the JSON schema of the
   Compose Specification (draft-07; the file `docker compose config` validates against). The copy
   is vendored unchanged from the npm package dclint 3.1.0 (`schemas/compose.schema.json`, MIT
   package; the schema itself is compose-spec/compose-spec `schema/compose-spec.json`,
   Apache-2.0, byte-identical to its revision of 2025-07-20). To update it:
   `npm pack dclint@<version> && tar xzf dclint-<version>.tgz package/schemas/compose.schema.json`
   and copy that file over tests/deploy/compose-spec.json.
2. Semantics the schema cannot express (what `docker compose up` would trip on):
   - every service named in a `depends_on` exists (and no service depends on itself);
   - every network a service joins is declared under top-level `networks` (or is `default`);
   - every named volume a service mounts is declared under top-level `volumes`;
   - every relative bind-mount source (`./file:/dst`) exists -- Docker would otherwise create an
     empty directory in its place; `./plugin.wasm` is a build output: `make build` writes it;
   - every `build.context` is a directory and its `dockerfile` exists; every `env_file` exists;
   - every secret / config a service uses is declared at the top level;
   - no host port is published twice;
   - every `${VAR}` interpolation has a default (`${VAR:-value}`), so no .env file is needed.
Exit status: 0 valid, 1 invalid (every problem listed on stderr), 2 missing Python packages.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

try:
    import jsonschema
    import yaml
except ImportError as e:  # environment problem, not a compose problem
    print(
        f"check_compose: FAILED: {e}; run `make pyenv` (creates target/pyenv from "
        "tests/deploy/requirements.txt) and use target/pyenv/bin/python",
        file=sys.stderr,
    )
    sys.exit(2)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "compose-spec.json"
# Files the compose file mounts that the build produces, and the command that makes them.
BUILD_OUTPUTS = {"plugin.wasm": "make build"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, ${VAR:+alt}, ${VAR+alt}; $$ escapes.
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)((?::?[-?+])[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def schema_errors(doc: Any) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The schema declares draft-07 ("https://json-schema.org/draft-07/schema"); say so explicitly
    # rather than let jsonschema guess from the URL spelling.
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        best = jsonschema.exceptions.best_match([err, *err.context]) if err.context else err
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        out.append(f"schema: {where}: {best.message}")
    return out


def names(value: Any) -> list[str]:
    """Names from a list-or-mapping field (networks, depends_on, secrets, configs)."""
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, list):
        return [v if isinstance(v, str) else str((v or {}).get("source")) for v in value]
    return []


def volume_mounts(volumes: list[Any]) -> Iterator[tuple[str, str]]:
    """(type, source) of each mount: 'bind' for paths, 'volume' for named volumes, 'tmpfs'..."""
    for v in volumes or []:
        if isinstance(v, str):
            src = v.split(":", 1)[0] if ":" in v else ""
            if not src:
                continue  # anonymous volume
            kind = "bind" if src.startswith((".", "/", "~")) else "volume"
            yield kind, src
        elif isinstance(v, dict):
            if v.get("source"):
                yield str(v.get("type", "volume")), str(v["source"])


def semantic_errors(doc: dict[str, Any], base: Path) -> list[str]:
    errors: list[str] = []
    services: dict[str, Any] = doc.get("services") or {}
    networks = set((doc.get("networks") or {}).keys()) | {"default"}
    volumes = set((doc.get("volumes") or {}).keys())
    secrets = set((doc.get("secrets") or {}).keys())
    configs = set((doc.get("configs") or {}).keys())
    published: dict[str, str] = {}

    def missing_file(what: str, src: str) -> str:
        fix = BUILD_OUTPUTS.get(Path(src).name)
        hint = f"run `{fix}`" if fix else "create it or fix the path"
        return f"{what}: {src} does not exist ({hint})"

    for name, svc in services.items():
        svc = svc or {}
        for dep in names(svc.get("depends_on")):
            if dep == name:
                errors.append(f"services.{name}.depends_on: a service cannot depend on itself")
            elif dep not in services:
                errors.append(f"services.{name}.depends_on: no service {dep!r} (services: {sorted(services)})")
        for net in names(svc.get("networks")):
            if net not in networks:
                errors.append(f"services.{name}.networks: {net!r} is not declared under top-level networks")
        for kind, src in volume_mounts(svc.get("volumes")):
            if kind == "bind":
                if src.startswith("~"):
                    continue  # the user's home: not ours to check
                if not (base / src).exists():
                    errors.append(missing_file(f"services.{name}.volumes", src))
            elif kind == "volume" and src not in volumes:
                errors.append(f"services.{name}.volumes: named volume {src!r} is not declared under top-level volumes")
        build = svc.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            ctx = base / context
            if not ctx.is_dir():
                errors.append(f"services.{name}.build.context: {context} is not a directory")
            elif isinstance(build, dict) and "dockerfile_inline" not in build:
                dockerfile = ctx / build.get("dockerfile", "Dockerfile")
                if not dockerfile.is_file():
                    errors.append(missing_file(f"services.{name}.build.dockerfile", str(dockerfile.relative_to(base))))
        env_files = svc.get("env_file") or []
        for ef in [env_files] if isinstance(env_files, str) else env_files:
            path = ef if isinstance(ef, str) else ef.get("path")
            required = True if isinstance(ef, str) else ef.get("required", True)
            if required and not (base / path).exists():
                errors.append(missing_file(f"services.{name}.env_file", path))
        for s in names(svc.get("secrets")):
            if s not in secrets:
                errors.append(f"services.{name}.secrets: {s!r} is not declared under top-level secrets")
        for c in names(svc.get("configs")):
            if c not in configs:
                errors.append(f"services.{name}.configs: {c!r} is not declared under top-level configs")
        for port in svc.get("ports") or []:
            if isinstance(port, dict):
                host = str(port.get("published", "")) if port.get("published") is not None else ""
                proto = port.get("protocol", "tcp")
            else:
                spec, _, proto = str(port).partition("/")
                parts = spec.split(":")
                host = parts[-2] if len(parts) >= 2 else ""
                proto = proto or "tcp"
            if host:
                key = f"{host}/{proto}"
                if key in published:
                    errors.append(f"services.{name}.ports: host port {key} already published by {published[key]}")
                published[key] = name

    for where, value in strings(doc):
        for m in INTERPOLATION.finditer(value):
            if m.group(0) == "$$":
                continue
            var = m.group(1) or m.group(3)
            operator = (m.group(2) or "").lstrip(":")[:1]
            if operator not in ("-", "+"):  # bare $VAR / ${VAR}, or ${VAR:?error}
                errors.append(f"{where}: ${{{var}}} has no default; write ${{{var}:-value}}")

    # depends_on cycles (compose refuses them)
    graph = {n: [d for d in names((s or {}).get("depends_on")) if d in services] for n, s in services.items()}
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in graph[n]:
            if state.get(d) == 1:
                errors.append(f"depends_on cycle: {' -> '.join(stack + [n, d])}")
            elif d not in state:
                visit(d, stack + [n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])
    return errors


def main(argv: list[str]) -> int:
    path = Path(argv[1]).resolve() if len(argv) > 1 else ROOT / "docker-compose.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        print(f"check_compose: FAILED: {path.name} must be one YAML mapping", file=sys.stderr)
        return 1
    doc = docs[0]
    errors = schema_errors(doc)
    if not errors:  # semantics assume the shapes the schema guarantees
        errors = semantic_errors(doc, path.parent)
    if errors:
        for e in errors:
            print(f"check_compose: FAILED: {path.name}: {e}", file=sys.stderr)
        return 1
    services = sorted((doc.get("services") or {}).keys())
    print(f"check_compose: OK (Compose Specification schema + semantics; services {services})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
