"""Validate Kubernetes manifests offline against vendored schemas (tests/deploy/schemas/).

Used by check_istio.py and check_envoy_gateway.py. `validate(doc)` picks the schema by apiVersion
and kind: built-in kinds from the Kubernetes OpenAPI document (kubernetes-definitions.json), custom
resources from a vendored CRD's openAPIV3Schema (served versions only, metadata checked as
ObjectMeta). Like the API server with strict field validation (kubectl's default), unknown fields
are errors except under `x-kubernetes-preserve-unknown-fields`. `x-kubernetes-validations` (CEL)
rules on the fields a manifest sets are evaluated by the Python equivalents in CEL_RULES, keyed by
the rule's exact text; a rule that is not there is an error (a re-vendored CRD cannot skip one).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent / "schemas"
K8S_DEFINITIONS = SCHEMAS / "kubernetes-definitions.json"
DEF_PREFIX = "#/definitions/"

# Kubernetes' OpenAPI v2 spells these as `type: string` plus a format; the API server also takes
# numbers for them (targetPort: 9090, cpu: 1).
LOOSE_DEFINITIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": ["integer", "string"]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": ["number", "string"]},
}


def _is_url(s: str) -> bool:
    parts = urlsplit(s)
    return bool(parts.scheme) and bool(parts.netloc) and re.fullmatch(r"[a-z][a-z0-9+.-]*", parts.scheme) is not None


def _istio_url_scheme(url: str) -> bool:
    schemes = {"", "http", "https", "oci", "file"}
    if _is_url(url):
        return urlsplit(url).scheme in schemes
    return _is_url("http://" + url)


def _eg_target_ref_kinds(kinds: list[str]) -> Callable[[dict[str, Any]], bool]:
    return lambda s: all(r.get("kind") in kinds for r in ([s["targetRef"]] if "targetRef" in s else []) + s.get("targetRefs", []))


_EG_ROUTES = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
_EG_KINDS = ["Gateway", "ListenerSet", *_EG_ROUTES]

# CEL rule text (exactly as in the vendored CRD) -> Python equivalent on `self`.
CEL_RULES: dict[str, Callable[[Any], bool]] = {
    # Istio WasmPlugin (istio/api extensions/v1alpha1/wasm.proto)
    "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1":
        lambda s: sum(k in s for k in ("selector", "targetRef", "targetRefs")) <= 1,
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) &&\n'
    'url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])': _istio_url_scheme,
    'self.all(key, !key.contains("*"))': lambda s: all("*" not in k for k in s),
    "self.all(key, key.size() != 0)": lambda s: all(len(k) != 0 for k in s),
    '!self.contains("*")': lambda s: "*" not in s,
    "self.size() == 0": lambda s: len(s) == 0,
    # Envoy Gateway EnvoyExtensionPolicy (api/v1alpha1/envoyextensionypolicy_types.go, wasm_types.go)
    "(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || "
    "(has(self.targetSelectors) && self.targetSelectors.size() > 0) ":
        lambda s: ("targetRef" in s) != ("targetRefs" in s) or len(s.get("targetSelectors") or []) > 0,
    "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true":
        lambda s: "targetRef" not in s or s["targetRef"].get("group") == "gateway.networking.k8s.io",
    "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', "
    "'TCPRoute', 'TLSRoute'] : true":
        lambda s: "targetRef" not in s or s["targetRef"].get("kind") in _EG_KINDS,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true ":
        lambda s: all(r.get("group") == "gateway.networking.k8s.io" for r in s.get("targetRefs", [])),
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', "
    "'UDPRoute', 'TCPRoute', 'TLSRoute']) : true ":
        lambda s: all(r.get("kind") in _EG_KINDS for r in s.get("targetRefs", [])),
    "!has(self.mergeType) || ((!has(self.targetRef) || self.targetRef.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', "
    "'TCPRoute', 'TLSRoute']) && (!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in ['HTTPRoute', "
    "'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])) && (!has(self.targetSelectors) || "
    "self.targetSelectors.all(sel, sel.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])))":
        lambda s: "mergeType" not in s
        or (_eg_target_ref_kinds(_EG_ROUTES)(s) and all(t.get("kind") in _EG_ROUTES for t in s.get("targetSelectors", []))),
    "self.type == 'HTTP' ? has(self.http) : !has(self.http)": lambda s: (s.get("type") == "HTTP") == ("http" in s),
    "self.type == 'Image' ? has(self.image) : !has(self.image)": lambda s: (s.get("type") == "Image") == ("image" in s),
    "self.kind == 'Secret'": lambda s: s.get("kind", "Secret") == "Secret",
}


def strict(schema: Any) -> Any:
    """A copy where every object schema with `properties` rejects other keys (strict field
    validation), unless it preserves unknown fields or already says what else it takes."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (strict(v) if k not in ("enum", "required", "default", "example") else v) for k, v in schema.items()}
    if "properties" in schema:
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


class Schemas:
    def __init__(self, crd_files: list[Path]):
        doc = json.loads(K8S_DEFINITIONS.read_text(encoding="utf-8"))
        defs = {k: strict(v) for k, v in doc["definitions"].items()}
        defs.update(LOOSE_DEFINITIONS)
        self.definitions = defs
        self.builtin: dict[tuple[str, str], str] = {}
        for name, d in doc["definitions"].items():
            for gvk in d.get("x-kubernetes-group-version-kind", []):
                api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                self.builtin[(api, gvk["kind"])] = name
        self.crds: dict[tuple[str, str], dict[str, Any]] = {}
        self.crd_sources: dict[tuple[str, str], str] = {}
        for path in crd_files:
            crd = yaml.safe_load(path.read_text(encoding="utf-8"))
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                if v.get("served"):
                    self.crds[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
                    self.crd_sources[(f"{group}/{v['name']}", kind)] = path.name

    def _validator(self, schema: dict[str, Any]) -> jsonschema.Draft4Validator:
        root = dict(schema)
        root["definitions"] = self.definitions
        return jsonschema.Draft4Validator(root)

    def validate(self, doc: dict[str, Any], where: str) -> list[str]:
        """Errors of one manifest (empty when valid)."""
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key in self.builtin:
            schema: dict[str, Any] = {"$ref": DEF_PREFIX + self.builtin[key]}
            cel_root = None
        elif key in self.crds:
            cel_root = self.crds[key]
            schema = strict(cel_root)
            schema["properties"] = dict(schema["properties"])
            schema["properties"].update(
                apiVersion={"type": "string"}, kind={"type": "string"}, metadata={"$ref": DEF_PREFIX + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
            )
            schema["additionalProperties"] = False
        else:
            return [f"{where}: no vendored schema serves apiVersion {key[0]!r} kind {key[1]!r}"]
        errors = [
            f"{where}: {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(self._validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
        ]
        if cel_root is not None and not errors:
            errors += [f"{where}: {m}" for m in cel_errors(cel_root, doc, "")]
        return errors


def cel_errors(schema: dict[str, Any], value: Any, path: str) -> list[str]:
    """Evaluate the x-kubernetes-validations of every schema node the value reaches."""
    errors = []
    for rule in schema.get("x-kubernetes-validations") or []:
        fn = CEL_RULES.get(rule["rule"])
        if fn is None:
            errors.append(f"{path or '(root)'}: CEL rule not modelled in k8s_schema.CEL_RULES: {rule['rule']!r}")
        elif not fn(value):
            errors.append(f"{path or '(root)'}: {rule.get('message') or rule['rule']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) if k in props else (extra if isinstance(extra, dict) else None)
            if sub is not None:
                errors += cel_errors(sub, v, f"{path}/{k}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            errors += cel_errors(schema["items"], v, f"{path}/{i}")
    return errors


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def deepcopy(doc: Any) -> Any:
    return copy.deepcopy(doc)
