#!/usr/bin/env python3
"""Check a generated spec.yaml (the metadata layer of the plugin's Higress OCI image).

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tools/plugin_spec.py --out target/test-deploy/oci/spec.yaml
    target/pyenv/bin/python tests/deploy/check_spec.py target/test-deploy/oci/spec.yaml

`make test-deploy` runs both. Checks (exits 1 with a message on the first failure):
  1. the file is YAML in Higress's spec.yaml shape: apiVersion 1.0.0, info (name, category auth,
     title, description), spec.phase / spec.priority, spec.configSchema.openAPIV3Schema and
     spec.routeConfigSchema.openAPIV3Schema of type object;
  2. info.version is the root Cargo.toml [package] version; phase is AUTHN and phase / priority
     are deploy/higress/wasmplugin.yaml's;
  3. the configSchema lists exactly the keys of README.md's "## Configuration reference" table,
     read here by its own parser, each with the type of its Type cell (`integer a–b` / `≥ a` as
     minimum / maximum), and with `default` equal to the Default cell when that cell is one code
     span holding a value of the type (`401`, `false`, `[]`, `Bearer `) and no `default` when it is
     `–` or `none`; every default validates against its own property;
  4. the Chinese meaning of each key that README_ZH.md's "## 配置参考" table lists is the key's
     x-description-i18n zh-CN (keys it lacks are reported, not failed: the translation may lag);
  5. routeConfigSchema = configSchema without the top-level-only `_rules_`;
  6. the example is deploy/plugin-config.json, and it, wasmplugin.yaml's defaultConfig and every
     matchRules config validate against the schemas (jsonschema).
Needs PyYAML and jsonschema (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

try:
    import jsonschema
    import yaml
except ImportError:  # pragma: no cover - environment problem, not a spec problem
    sys.exit("check_spec: FAILED: PyYAML / jsonschema missing; run `make pyenv` and use target/pyenv/bin/python")

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_ZH = ROOT / "README_ZH.md"
CARGO_TOML = ROOT / "Cargo.toml"
WASMPLUGIN_YAML = ROOT / "deploy" / "higress" / "wasmplugin.yaml"
PLUGIN_CONFIG = ROOT / "deploy" / "plugin-config.json"

TYPE_WORDS = {"string": "string", "integer": "integer", "boolean": "boolean", "array": "array", "object": "object"}


def table(path: Path, heading: str) -> list[list[str]]:
    """Body rows of the first Markdown table after `heading` (cells split on unescaped `|`)."""
    text = path.read_text(encoding="utf-8")
    assert heading in text.splitlines(), f"{path.name}: no section {heading!r}"
    after = text.split("\n" + heading + "\n", 1)[1]
    rows = []
    for line in after.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
        elif rows:
            break
    assert len(rows) > 2, f"{path.name}: no table under {heading!r}"
    return rows[2:]  # header and separator dropped


def one_code_span(cell: str) -> str | None:
    m = re.fullmatch(r"`([^`]*)`", cell)
    return m.group(1) if m else None


def expected_default(cell: str, kind: str) -> tuple[bool, Any]:
    raw = one_code_span(cell)
    if raw is None:
        return False, None
    if kind == "string":
        return True, raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return False, None
    py = {"integer": int, "boolean": bool, "array": list, "object": dict}[kind]
    if isinstance(value, py) and not (kind == "integer" and isinstance(value, bool)):
        return True, value
    return False, None


def wasmplugin_spec() -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(WASMPLUGIN_YAML.read_text(encoding="utf-8")) if d]
    plugins = [d for d in docs if d.get("kind") == "WasmPlugin"]
    assert len(plugins) == 1, f"wasmplugin.yaml: expected one WasmPlugin, found {len(plugins)}"
    return plugins[0]["spec"]


def validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{what} does not validate: " + "; ".join(
        f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors
    )


def main(argv: list[str]) -> int:
    assert len(argv) == 2, "usage: check_spec.py SPEC_YAML"
    spec_path = Path(argv[1])
    doc = yaml.safe_load(spec_path.read_text(encoding="utf-8"))

    # 1. shape
    assert isinstance(doc, dict), "spec.yaml is not a mapping"
    assert doc.get("apiVersion") == "1.0.0", f"apiVersion {doc.get('apiVersion')!r} != '1.0.0'"
    info, spec = doc.get("info") or {}, doc.get("spec") or {}
    for field in ("name", "category", "title", "description", "version"):
        assert isinstance(info.get(field), str) and info[field], f"info.{field} missing"
    assert info["category"] == "auth", f"info.category {info['category']!r} != 'auth'"
    schemas = {}
    for name in ("configSchema", "routeConfigSchema"):
        s = ((spec.get(name) or {}).get("openAPIV3Schema")) or {}
        assert s.get("type") == "object" and isinstance(s.get("properties"), dict), (
            f"spec.{name}.openAPIV3Schema must be an object schema with properties"
        )
        schemas[name] = s

    # 2. version, phase, priority
    with CARGO_TOML.open("rb") as f:
        version = tomllib.load(f)["package"]["version"]
    assert info["version"] == version, f"info.version {info['version']!r} != Cargo.toml {version!r}"
    deployed = wasmplugin_spec()
    assert spec.get("phase") == "AUTHN", f"spec.phase {spec.get('phase')!r} != AUTHN"
    assert spec.get("phase") == deployed.get("phase"), "spec.phase differs from wasmplugin.yaml"
    assert spec.get("priority") == deployed.get("priority"), (
        f"spec.priority {spec.get('priority')!r} != wasmplugin.yaml {deployed.get('priority')!r}"
    )

    # 3. every README key, its type and default
    props = schemas["configSchema"]["properties"]
    rows = table(README, "## Configuration reference")
    keys = []
    for row in rows:
        assert len(row) == 4, f"README.md reference row {row} has {len(row)} cells"
        key = one_code_span(row[0])
        assert key, f"README.md reference row {row}: Key is not one code span"
        keys.append(key)
        prop = props.get(key)
        assert isinstance(prop, dict), f"spec.yaml has no property {key!r} (README.md lists it)"
        words = row[1].split()
        kind = TYPE_WORDS.get(words[0].rstrip(",").lower() if words else "")
        assert kind, f"README.md {key}: unknown Type {row[1]!r}"
        assert prop.get("type") == kind, f"{key}: type {prop.get('type')!r}, README.md says {row[1]!r}"
        rng = re.search(r"(-?\d+)\s*[–—-]\s*(-?\d+)", row[1])
        ge = re.search(r"≥\s*(-?\d+)", row[1])
        if kind == "integer" and rng:
            assert (prop.get("minimum"), prop.get("maximum")) == (int(rng[1]), int(rng[2])), (
                f"{key}: minimum/maximum {prop.get('minimum')}/{prop.get('maximum')}, README.md says {row[1]!r}"
            )
        if kind == "integer" and ge:
            assert prop.get("minimum") == int(ge[1]), f"{key}: minimum {prop.get('minimum')}, README.md says {row[1]!r}"
        if kind == "array":
            assert isinstance(prop.get("items"), dict), f"{key}: array without items"
        has, value = expected_default(row[2], kind)
        if has:
            assert "default" in prop and prop["default"] == value and type(prop["default"]) is type(value), (
                f"{key}: default {prop.get('default', '(none)')!r}, README.md says {row[2]}"
            )
            validate(prop["default"], prop, f"{key}'s default")
        else:
            assert "default" not in prop, f"{key}: default {prop['default']!r} but README.md says {row[2]!r}"
        assert isinstance(prop.get("description"), str) and prop["description"], f"{key}: no description"
    assert len(keys) == len(set(keys)), f"README.md lists a key twice: {keys}"
    extra = sorted(set(props) - set(keys))
    assert not extra, f"spec.yaml has keys README.md does not list: {extra}"

    # 4. Chinese meanings
    zh_rows = {one_code_span(r[0]): r[-1] for r in table(README_ZH, "## 配置参考") if len(r) == 4}
    for key in keys:
        if key in zh_rows:
            got = (props[key].get("x-description-i18n") or {}).get("zh-CN")
            assert got == zh_rows[key], f"{key}: x-description-i18n zh-CN {got!r} != README_ZH.md {zh_rows[key]!r}"
    missing_zh = [k for k in keys if k not in zh_rows]
    if missing_zh:
        print(f"check_spec: note: README_ZH.md's 配置参考 table lacks {missing_zh} (no zh-CN description)")

    # 5. route-level schema
    route = schemas["routeConfigSchema"]["properties"]
    want = {k: v for k, v in props.items() if not k.startswith("_")}
    assert route == want, (
        f"routeConfigSchema keys {sorted(route)} != configSchema keys without _rules_ {sorted(want)}"
    )

    # 6. examples and the deployed configuration validate
    plugin_config = json.loads(PLUGIN_CONFIG.read_text(encoding="utf-8"))
    for name, s in schemas.items():
        assert s.get("example") == plugin_config, f"spec.{name} example != deploy/plugin-config.json"
        validate(plugin_config, s, f"deploy/plugin-config.json against {name}")
    if not deployed.get("defaultConfigDisable") and deployed.get("defaultConfig"):
        validate(deployed["defaultConfig"], schemas["configSchema"], "wasmplugin.yaml defaultConfig")
    for i, rule in enumerate(deployed.get("matchRules") or []):
        validate(rule.get("config") or {}, schemas["routeConfigSchema"], f"wasmplugin.yaml matchRules[{i}].config")

    print(f"check_spec: OK ({len(keys)} keys, version {version}, {spec['phase']}/{spec['priority']})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except AssertionError as e:
        print(f"check_spec: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
