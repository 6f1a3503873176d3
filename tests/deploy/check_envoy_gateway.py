#!/usr/bin/env python3
"""Check deploy/envoy-gateway: the EnvoyExtensionPolicy that loads easy-jwt and the EnvoyPatchPolicy
that adds the token server's cluster.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tests/deploy/check_envoy_gateway.py

`make test-deploy` runs it. Checks (exits 1 with a message on the first failing check):
  1. both resources validate against Envoy Gateway's published CRDs (tests/deploy/schemas/, see
     README.md there): unknown fields are errors and the CRDs' CEL rules on the fields set are
     evaluated (k8s_schema.py).
  2. the EnvoyPatchPolicy is a JSONPatch `add` with an empty path (Envoy Gateway then adds the value
     as a new resource) of type envoy.config.cluster.v3.Cluster, whose value loads as that message
     (envoy-data-plane protos, unknown fields rejected), named as the patch; its one endpoint is
     <svc>.<ns>.svc.cluster.local:<port> of a Service port of deploy/istio/token-server.yaml.
  3. the EnvoyExtensionPolicy has one wasm extension loaded from an image tagged with the
     Cargo.toml version (registry/name:tag, no scheme; or @sha256:…), failOpen false; its config is
     deploy/plugin-config.json with tokenServerFQDN/tokenServerPort replaced by tokenServerCluster
     naming the patched cluster (and tokenServerAuthority the token server's host); both policies
     are in one namespace and target the same Gateway.
Needs PyYAML, jsonschema and envoy-data-plane (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

try:
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import k8s_schema
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"check_envoy_gateway: FAILED: {e}; run `make pyenv` and use target/pyenv/bin/python")

ROOT = Path(__file__).resolve().parents[2]
EG_DIR = ROOT / "deploy" / "envoy-gateway"
EXTENSION_YAML = EG_DIR / "envoy-extension-policy.yaml"
PATCH_YAML = EG_DIR / "envoy-patch-policy.yaml"
TOKEN_SERVER_YAML = ROOT / "deploy" / "istio" / "token-server.yaml"
PLUGIN_CONFIG = ROOT / "deploy" / "plugin-config.json"
CARGO_TOML = ROOT / "Cargo.toml"
CRDS = [
    k8s_schema.SCHEMAS / "envoy-gateway-envoyextensionpolicies.yaml",
    k8s_schema.SCHEMAS / "envoy-gateway-envoypatchpolicies.yaml",
]
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


def one(path: Path, kind: str) -> dict[str, Any]:
    docs = k8s_schema.load_docs(path)
    assert len(docs) == 1 and docs[0].get("kind") == kind, f"{path.name}: expected one {kind}"
    return docs[0]


def targets(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    refs = ([spec["targetRef"]] if "targetRef" in spec else []) + (spec.get("targetRefs") or [])
    return [(r.get("group"), r.get("kind"), r.get("name")) for r in refs]


def main() -> int:
    schemas = k8s_schema.Schemas(CRDS)
    ext = one(EXTENSION_YAML, "EnvoyExtensionPolicy")
    patch = one(PATCH_YAML, "EnvoyPatchPolicy")

    # 1. CRD schemas
    errors = schemas.validate(ext, EXTENSION_YAML.name) + schemas.validate(patch, PATCH_YAML.name)
    assert not errors, "schema errors:\n  " + "\n  ".join(errors)

    # 2. the cluster the patch adds
    patches = patch["spec"]["jsonPatches"]
    clusters = [p for p in patches if p["type"] == CLUSTER_TYPE]
    assert len(clusters) == 1, f"{PATCH_YAML.name}: expected one Cluster patch, found {len(clusters)}"
    p = clusters[0]
    op = p["operation"]
    assert op["op"] == "add" and not op.get("path") and not op.get("jsonPath"), (
        f"{PATCH_YAML.name}: the Cluster patch must be op add with an empty path (a new resource), got {op}"
    )
    try:
        cluster = Cluster.from_dict(op["value"])  # unknown fields raise
    except Exception as e:  # betterproto raises KeyError/ValueError/TypeError
        raise AssertionError(f"{PATCH_YAML.name}: the value is not an envoy.config.cluster.v3.Cluster: {e}") from e
    assert cluster.name == p["name"], f"{PATCH_YAML.name}: cluster name {cluster.name!r} != patch name {p['name']!r}"
    endpoints = [
        lb.endpoint.address.socket_address
        for ep in cluster.load_assignment.endpoints
        for lb in ep.lb_endpoints
    ]
    assert len(endpoints) == 1, f"{PATCH_YAML.name}: expected one endpoint, found {len(endpoints)}"
    host, port = endpoints[0].address, endpoints[0].port_value
    m = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", host)
    assert m, f"{PATCH_YAML.name}: endpoint {host!r} is not <svc>.<ns>.svc.cluster.local"
    service_ports = [
        sp["port"]
        for d in k8s_schema.load_docs(TOKEN_SERVER_YAML)
        if d["kind"] == "Service" and d["metadata"]["name"] == m.group(1) and d["metadata"].get("namespace") == m.group(2)
        for sp in d["spec"]["ports"]
    ]
    assert port in service_ports, (
        f"{PATCH_YAML.name}: endpoint {host}:{port} is no Service port of {TOKEN_SERVER_YAML.relative_to(ROOT)} ({service_ports})"
    )

    # 3. the extension and its config
    wasm = ext["spec"].get("wasm") or []
    assert len(wasm) == 1, f"{EXTENSION_YAML.name}: expected one wasm extension, found {len(wasm)}"
    w = wasm[0]
    assert w.get("failOpen") is False, f"{EXTENSION_YAML.name}: failOpen must be false (fail closed)"
    assert w["code"]["type"] == "Image", f"{EXTENSION_YAML.name}: code.type must be Image (the pushed plugin image)"
    url = w["code"]["image"]["url"]
    with CARGO_TOML.open("rb") as f:
        version = tomllib.load(f)["package"]["version"]
    assert "://" not in url, f"{EXTENSION_YAML.name}: image url {url!r} takes no scheme (registry/name:tag)"
    assert re.fullmatch(r"[^/]+\.[^/]+/.+(:" + re.escape(version) + r"|@sha256:[0-9a-f]{64})", url), (
        f"{EXTENSION_YAML.name}: image url {url!r} must name a registry and the tag {version} (Cargo.toml) or a digest"
    )
    config = w.get("config") or {}
    want = {k: v for k, v in json.loads(PLUGIN_CONFIG.read_text(encoding="utf-8")).items()
            if k not in ("tokenServerFQDN", "tokenServerPort")}
    want.update(tokenServerCluster=cluster.name, tokenServerAuthority=host)
    assert config == want, (
        f"{EXTENSION_YAML.name}: config differs from deploy/plugin-config.json with tokenServerCluster:\n"
        f"  config: {json.dumps(config, sort_keys=True)}\n  want:   {json.dumps(want, sort_keys=True)}"
    )
    assert ext["metadata"].get("namespace") == patch["metadata"].get("namespace"), "the two policies are in different namespaces"
    assert set(targets(patch["spec"])) <= set(targets(ext["spec"])), (
        f"the patch targets {targets(patch['spec'])}, the extension {targets(ext['spec'])}: not the same Gateway"
    )
    print(f"check_envoy_gateway: OK (cluster {cluster.name} -> {host}:{port}, image {url})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"check_envoy_gateway: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
