#!/usr/bin/env python3
"""Regenerate the vendored schemas of tests/deploy/schemas/ from their upstream repositories.

Usage (GIT_DIR: a clone or bare mirror of the named repository; REF: the pinned tag):

    target/pyenv/bin/python tests/deploy/schemas/vendor.py istio GIT_DIR REF          # istio/api
    target/pyenv/bin/python tests/deploy/schemas/vendor.py kubernetes GIT_DIR REF     # kubernetes-client/python
    target/pyenv/bin/python tests/deploy/schemas/vendor.py envoy-gateway GIT_DIR REF  # envoyproxy/gateway

Each file is the upstream text cut to what the deploy checks need, `description`s dropped (they
are documentation, not constraints); everything else is kept as published. The source (repository,
tag, commit, path) is written into each file and listed in tests/deploy/schemas/README.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

# kind -> root definition of the Kubernetes OpenAPI v2 document (what deploy/ applies).
K8S_ROOTS = [
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.Namespace",
]
ISTIO_PATH = "kubernetes/customresourcedefinitions.gen.yaml"
K8S_PATH = "kubernetes/swagger.json.unprocessed"
EG_DIR = "charts/gateway-helm/charts/crds/crds/generated"
EG_CRDS = ["gateway.envoyproxy.io_envoyextensionpolicies.yaml", "gateway.envoyproxy.io_envoypatchpolicies.yaml"]


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True, text=True).stdout


def strip_descriptions(node: Any, in_properties: bool = False) -> Any:
    """Drop `description` keywords (not a property that happens to be named description)."""
    if isinstance(node, dict):
        return {
            k: strip_descriptions(v, k == "properties" and not in_properties)
            for k, v in node.items()
            if in_properties or k != "description"
        }
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def header(repo: str, ref: str, commit: str, path: str, what: str) -> str:
    return (
        f"# Vendored by tests/deploy/schemas/vendor.py: {what}\n"
        f"# Source: github.com/{repo} tag {ref} (commit {commit}), {path}\n"
        "# Descriptions dropped; everything else as published. Do not edit: rerun vendor.py.\n"
    )


def crd_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(strip_descriptions(doc), sort_keys=False, width=100)


def vendor_istio(git_dir: str, ref: str) -> None:
    commit = git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
    docs = [d for d in yaml.safe_load_all(git(git_dir, "show", f"{ref}:{ISTIO_PATH}")) if d]
    crd = [d for d in docs if d["metadata"]["name"] == "wasmplugins.extensions.istio.io"]
    assert len(crd) == 1, "no WasmPlugin CRD in " + ISTIO_PATH
    out = HERE / "istio-wasmplugin-crd.yaml"
    out.write_text(
        header("istio/api", ref, commit, ISTIO_PATH, "Istio's WasmPlugin CRD (extensions.istio.io)")
        + crd_yaml(crd[0]),
        encoding="utf-8",
    )
    print(f"wrote {out}")


def vendor_kubernetes(git_dir: str, ref: str) -> None:
    commit = git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
    doc = json.loads(git(git_dir, "show", f"{ref}:{K8S_PATH}"))
    defs = doc["definitions"]
    seen: set[str] = set()
    todo = list(K8S_ROOTS)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += re.findall(r'"#/definitions/([^"]+)"', json.dumps(defs[name]))
    branch = re.search(r'KUBERNETES_BRANCH = "([^"]+)"', git(git_dir, "show", f"{ref}:scripts/constants.py"))
    out = HERE / "kubernetes-definitions.json"
    trimmed = {
        "x-source": (
            f"Vendored by tests/deploy/schemas/vendor.py from github.com/kubernetes-client/python tag {ref} "
            f"(commit {commit}), {K8S_PATH}: the Kubernetes OpenAPI v2 document of kubernetes/kubernetes "
            f"{branch.group(1) if branch else '?'} (api/openapi-spec/swagger.json), cut to the definitions "
            f"{', '.join(K8S_ROOTS)} reach; descriptions dropped. Do not edit: rerun vendor.py."
        ),
        "definitions": {k: strip_descriptions(defs[k]) for k in sorted(seen)},
    }
    # One definition per line: readable diffs when re-vendored.
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in trimmed["definitions"].items())
    out.write_text(
        "{\n" + f'"x-source": {json.dumps(trimmed["x-source"])},\n"definitions": {{\n{lines}\n}}\n}}\n',
        encoding="utf-8",
    )
    json.loads(out.read_text(encoding="utf-8"))
    print(f"wrote {out} ({len(seen)} definitions)")


def vendor_envoy_gateway(git_dir: str, ref: str) -> None:
    commit = git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
    for name in EG_CRDS:
        path = f"{EG_DIR}/{name}"
        crd = yaml.safe_load(git(git_dir, "show", f"{ref}:{path}"))
        out = HERE / f"envoy-gateway-{name.split('_')[1]}"
        out.write_text(
            header("envoyproxy/gateway", ref, commit, path, f"Envoy Gateway's {crd['spec']['names']['kind']} CRD")
            + crd_yaml(crd),
            encoding="utf-8",
        )
        print(f"wrote {out}")


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("istio", "kubernetes", "envoy-gateway"):
        print(__doc__, file=sys.stderr)
        return 2
    {"istio": vendor_istio, "kubernetes": vendor_kubernetes, "envoy-gateway": vendor_envoy_gateway}[argv[1]](
        argv[2], argv[3]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
