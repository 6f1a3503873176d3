#!/usr/bin/env python3
"""Consistency checks for the deploy manifests, plus the Higress config JSON for the e2e tests.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tests/deploy/check_manifests.py [OUT_JSON]

Checks (plain asserts; exits 1 with a message on the first failure):
  1. envoy.yaml's wasm filter `configuration` JSON == deploy/plugin-config.json (parsed).
  2. the cluster the plugin config names, outbound|<tokenServerPort>||<tokenServerFQDN>, is one
     of envoy.yaml's clusters (for every config found: envoy.yaml's and each WasmPlugin rule's).
  3. deploy/higress/wasmplugin.yaml: the rule for higress-course/ingress-foo carries exactly
     deploy/plugin-config.json; McpBridge registry `type: dns` yields the cluster the config names.
  4. deploy/higress/kustomization.yaml lists every other YAML file of deploy/higress/.
  5. docker-compose.yaml: envoy mounts ./envoy.yaml and ./plugin.wasm where envoy.yaml expects
     them, and every DNS name envoy.yaml's clusters resolve is a compose service.

If OUT_JSON is given, writes there the JSON that Higress delivers to the plugin for
deploy/higress/wasmplugin.yaml (what `convertIstioWasmPlugin` builds): global keys from
`defaultConfig` unless `defaultConfigDisable`, and one `_rules_` entry per matchRules item with
`_match_route_` (from `ingress`), `_match_domain_` (from `domain`), `_match_service_` (from
`service`) injected into its `config`; items with `configDisable: true` are skipped.

Needs PyYAML: `make pyenv` creates target/pyenv from the hash-locked tests/deploy/requirements.txt
(`make test-deploy` runs this check with it). docker-compose.yaml's schema and the rest of its
semantics are checked by check_compose.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, not a manifest problem
    sys.exit(
        "check_manifests: FAILED: PyYAML is missing; run `make pyenv` (creates target/pyenv from "
        "tests/deploy/requirements.txt) and use target/pyenv/bin/python"
    )

ROOT = Path(__file__).resolve().parents[2]
ENVOY_YAML = ROOT / "envoy.yaml"
PLUGIN_CONFIG = ROOT / "deploy" / "plugin-config.json"
HIGRESS_DIR = ROOT / "deploy" / "higress"
WASMPLUGIN_YAML = HIGRESS_DIR / "wasmplugin.yaml"
MCPBRIDGE_YAML = HIGRESS_DIR / "mcpbridge.yaml"
KUSTOMIZATION_YAML = HIGRESS_DIR / "kustomization.yaml"
COMPOSE_YAML = ROOT / "docker-compose.yaml"

WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network."
    "http_connection_manager.v3.HttpConnectionManager"
)
STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue"

# matchRules field -> key Higress injects into the rule config (ingress_config.go).
MATCH_KEYS = (("ingress", "_match_route_"), ("domain", "_match_domain_"), ("service", "_match_service_"))


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_yaml_one(path: Path, kind: str) -> dict[str, Any]:
    docs = [d for d in load_yaml_docs(path) if d.get("kind") == kind]
    assert len(docs) == 1, f"{path.relative_to(ROOT)}: expected exactly one {kind}, found {len(docs)}"
    return docs[0]


def wasm_filters(bootstrap: dict[str, Any]) -> list[dict[str, Any]]:
    """Every http filter whose typed_config is the Wasm message, across all listeners."""
    found = []
    for listener in bootstrap.get("static_resources", {}).get("listeners", []) or []:
        for chain in listener.get("filter_chains", []) or []:
            for nf in chain.get("filters", []) or []:
                tc = nf.get("typed_config") or {}
                if tc.get("@type") != HCM_TYPE:
                    continue
                for hf in tc.get("http_filters", []) or []:
                    htc = hf.get("typed_config") or {}
                    assert htc.get("@type") != "type.googleapis.com/udpa.type.v1.TypedStruct", (
                        f"envoy.yaml: filter {hf.get('name')!r} uses the TypedStruct wrapper; "
                        "use the Wasm message directly"
                    )
                    if htc.get("@type") == WASM_FILTER_TYPE:
                        found.append(hf)
    return found


def cluster_for(config: dict[str, Any], where: str) -> str:
    fqdn = config.get("tokenServerFQDN")
    port = config.get("tokenServerPort")
    assert isinstance(fqdn, str) and fqdn, f"{where}: tokenServerFQDN missing or not a string"
    assert isinstance(port, int) and not isinstance(port, bool), f"{where}: tokenServerPort not an int"
    return f"outbound|{port}||{fqdn}"


def higress_plugin_json(plugin: dict[str, Any]) -> dict[str, Any]:
    """The JSON Higress hands the plugin for a WasmPlugin resource (see module docstring)."""
    spec = plugin.get("spec") or {}
    assert "pluginConfig" not in spec, "raw pluginConfig is passed through untouched; not modelled"
    out: dict[str, Any] = {}
    if not spec.get("defaultConfigDisable", False):
        default = spec.get("defaultConfig") or {}
        assert isinstance(default, dict), "defaultConfig must be a mapping"
        out.update(default)
    rules = []
    for i, item in enumerate(spec.get("matchRules") or []):
        if item.get("configDisable", False):
            continue
        rule = dict(item.get("config") or {})
        has_match = False
        for field, key in MATCH_KEYS:
            values = item.get(field) or []
            assert isinstance(values, list), f"matchRules[{i}].{field} must be a list"
            if values:
                rule[key] = list(values)
                has_match = True
        assert has_match, f"matchRules[{i}] has no ingress/domain/service: Higress rejects it"
        rules.append(rule)
    if rules:
        out["_rules_"] = rules
    return out


def main(argv: list[str]) -> int:
    plugin_config = json.loads(PLUGIN_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(plugin_config, dict), "deploy/plugin-config.json must be a JSON object"

    # 1. envoy.yaml's configuration == deploy/plugin-config.json
    bootstrap = load_yaml_docs(ENVOY_YAML)
    assert len(bootstrap) == 1, "envoy.yaml must be a single YAML document"
    bootstrap_doc = bootstrap[0]
    filters = wasm_filters(bootstrap_doc)
    assert len(filters) == 1, f"envoy.yaml: expected one wasm http filter, found {len(filters)}"
    wasm = filters[0]["typed_config"].get("config") or {}
    conf = wasm.get("configuration") or {}
    assert conf.get("@type") == STRING_VALUE_TYPE, (
        f"envoy.yaml: wasm configuration must be a google.protobuf.StringValue, got {conf.get('@type')!r}"
    )
    try:
        envoy_config = json.loads(conf.get("value", ""))
    except json.JSONDecodeError as e:
        raise AssertionError(f"envoy.yaml: wasm configuration value is not JSON: {e}") from e
    assert envoy_config == plugin_config, (
        "envoy.yaml's wasm configuration differs from deploy/plugin-config.json:\n"
        f"  envoy.yaml:  {json.dumps(envoy_config, sort_keys=True)}\n"
        f"  plugin-config.json: {json.dumps(plugin_config, sort_keys=True)}"
    )
    assert wasm.get("root_id") == "easy-jwt", "envoy.yaml: root_id must be easy-jwt"
    assert wasm.get("fail_open") is False, "envoy.yaml: fail_open must be false (fail closed)"

    # 2. every named cluster exists in envoy.yaml
    clusters = {c.get("name") for c in bootstrap_doc.get("static_resources", {}).get("clusters", [])}
    wanted = {cluster_for(envoy_config, "envoy.yaml configuration")}

    # 3. WasmPlugin / McpBridge
    plugin = load_yaml_one(WASMPLUGIN_YAML, "WasmPlugin")
    delivered = higress_plugin_json(plugin)
    rules = delivered.get("_rules_", [])
    route_rules = [r for r in rules if "higress-course/ingress-foo" in r.get("_match_route_", [])]
    assert len(route_rules) == 1, "wasmplugin.yaml: need one rule for higress-course/ingress-foo"
    rule_config = {k: v for k, v in route_rules[0].items() if not k.startswith("_match_")}
    assert rule_config == plugin_config, (
        "wasmplugin.yaml rule config differs from deploy/plugin-config.json:\n"
        f"  wasmplugin.yaml: {json.dumps(rule_config, sort_keys=True)}\n"
        f"  plugin-config.json: {json.dumps(plugin_config, sort_keys=True)}"
    )
    for i, rule in enumerate(rules):
        wanted.add(cluster_for(rule, f"wasmplugin.yaml rule {i}"))
    if any(k != "_rules_" for k in delivered):
        wanted.add(cluster_for(delivered, "wasmplugin.yaml defaultConfig"))
    missing = sorted(wanted - clusters)
    assert not missing, f"envoy.yaml has no cluster(s) {missing}; it has {sorted(c for c in clusters if c)}"

    bridge = load_yaml_one(MCPBRIDGE_YAML, "McpBridge")
    bridge_clusters = {
        f"outbound|{r['port']}||{r['name']}.dns"
        for r in (bridge.get("spec") or {}).get("registries", [])
        if r.get("type") == "dns"
    }
    for rule in rules:
        c = cluster_for(rule, "wasmplugin.yaml rule")
        assert c in bridge_clusters, f"mcpbridge.yaml creates {sorted(bridge_clusters)}, not {c}"

    # 4. kustomization lists every manifest
    kust = load_yaml_docs(KUSTOMIZATION_YAML)[0]
    listed = set(kust.get("resources") or [])
    present = {p.name for p in HIGRESS_DIR.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == present, f"kustomization.yaml resources {sorted(listed)} != files {sorted(present)}"

    # 5. docker-compose.yaml wiring
    compose = load_yaml_docs(COMPOSE_YAML)[0]
    services = compose.get("services") or {}
    assert {"envoy", "token-server", "echo-server"} <= set(services), (
        f"docker-compose.yaml: services {sorted(services)} lack envoy/token-server/echo-server"
    )
    mounts = {}
    for v in services["envoy"].get("volumes") or []:
        src, dst = str(v).split(":")[:2]
        mounts[dst] = src
    wasm_file = (((wasm.get("vm_config") or {}).get("code") or {}).get("local") or {}).get("filename")
    assert mounts.get(wasm_file) == "./plugin.wasm", (
        f"docker-compose.yaml: envoy must mount ./plugin.wasm at {wasm_file} (mounts: {mounts})"
    )
    assert mounts.get("/etc/envoy/envoy.yaml") == "./envoy.yaml", "envoy.yaml must be mounted"
    for c in bootstrap_doc.get("static_resources", {}).get("clusters", []):
        for ep in c.get("load_assignment", {}).get("endpoints", []):
            for lb in ep.get("lb_endpoints", []):
                host = lb["endpoint"]["address"]["socket_address"]["address"]
                assert host in services, f"envoy.yaml cluster {c.get('name')!r} resolves {host!r}, not a compose service"

    if len(argv) > 1:
        out = Path(argv[1])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(delivered, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"check_manifests: wrote Higress plugin JSON to {out}")
    print("check_manifests: OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except AssertionError as e:
        print(f"check_manifests: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
