#!/usr/bin/env python3
"""Check deploy/istio: Istio's WasmPlugin, the token server it calls, and the kustomization.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tests/deploy/check_istio.py

`make test-deploy` runs it. Checks (exits 1 with a message on the first failing check):
  1. every resource of deploy/istio validates against its published schema (tests/deploy/schemas/,
     see README.md there): the WasmPlugin against Istio's WasmPlugin CRD (istio/api), the
     Namespace, Secret, Deployment and Service against Kubernetes' OpenAPI definitions; unknown
     fields are errors, and the CRD's CEL rules (one of selector/targetRef/targetRefs, url scheme,
     label keys) are evaluated. The commented `targetRefs` variant of wasmplugin.yaml, uncommented
     in place of `selector`, validates too.
  2. the WasmPlugin: extensions.istio.io/v1alpha1, phase AUTHN, failStrategy FAIL_CLOSE, a
     selector (matchLabels) or targetRefs; its pluginConfig is deploy/plugin-config.json except
     tokenServerFQDN, which is <svc>.<ns>.svc.cluster.local of a Service of deploy/istio whose
     ports include tokenServerPort; that Service selects the token-server Deployment's pods and
     targets a port the container declares, the one TOKEN_SERVER_BIND listens on.
  3. token-server.yaml's Secret and Deployment are deploy/higress/token-server.yaml's (same image,
     environment, probes, limits) but for the namespace.
  4. kustomization.yaml lists every other YAML file of deploy/istio; the image is set in one
     place (wasmplugin.yaml's `url` is the placeholder the single `images:` entry names, and
     `configurations:` teaches kustomize the field extensions.istio.io WasmPlugin spec/url); that
     entry keeps `oci://` and has the Cargo.toml version as tag (or a sha256 digest), never latest.
  5. when `kubectl` is on PATH: `kubectl kustomize deploy/istio` renders the url as
     oci://<newName>:<newTag> and every rendered resource passes check 1 again; a copy whose entry
     has `digest:` renders oci://<newName>@sha256:… (skipped, with a note, without kubectl).
  6. the "Istio" sections of README.md and README_ZH.md say what these files do: `kubectl apply -k
     deploy/istio/`, the images: entry's newName and newTag, the token server's FQDN and port, the
     layer media type Istio's fetcher wants last (the one make push gives plugin.tar.gz).
Needs PyYAML and jsonschema (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

try:
    import yaml

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import k8s_schema
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"check_istio: FAILED: {e}; run `make pyenv` and use target/pyenv/bin/python")

ROOT = Path(__file__).resolve().parents[2]
ISTIO_DIR = ROOT / "deploy" / "istio"
KUSTOMIZATION = ISTIO_DIR / "kustomization.yaml"
WASMPLUGIN_YAML = ISTIO_DIR / "wasmplugin.yaml"
TOKEN_SERVER_YAML = ISTIO_DIR / "token-server.yaml"
HIGRESS_TOKEN_SERVER_YAML = ROOT / "deploy" / "higress" / "token-server.yaml"
PLUGIN_CONFIG = ROOT / "deploy" / "plugin-config.json"
CARGO_TOML = ROOT / "Cargo.toml"
ISTIO_CRD = k8s_schema.SCHEMAS / "istio-wasmplugin-crd.yaml"
API_VERSION = "extensions.istio.io/v1alpha1"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def one(docs: list[dict[str, Any]], kind: str, where: str) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"{where}: expected one {kind}, found {len(found)}"
    return found[0]


def targetrefs_variant(text: str) -> list[dict[str, Any]]:
    """The commented `# targetRefs:` block of wasmplugin.yaml, uncommented and parsed."""
    lines = text.splitlines()
    start = [i for i, l in enumerate(lines) if re.fullmatch(r"  # targetRefs:\s*", l)]
    assert len(start) == 1, "wasmplugin.yaml: expected one commented `  # targetRefs:` block (the Istio >= 1.22 variant)"
    block = ["targetRefs:"]
    for line in lines[start[0] + 1 :]:
        m = re.fullmatch(r"  #   (.*)", line)
        if not m:
            break
        block.append("  " + m.group(1))
    refs = yaml.safe_load("\n".join(block))["targetRefs"]
    assert isinstance(refs, list) and refs, "wasmplugin.yaml: the commented targetRefs block is empty"
    return refs


def check_schemas(schemas: k8s_schema.Schemas, docs: list[tuple[str, dict[str, Any]]]) -> None:
    errors = []
    for where, doc in docs:
        errors += schemas.validate(doc, where)
    assert not errors, "schema errors:\n  " + "\n  ".join(errors)


def port_matches(container: dict[str, Any], target: Any) -> int | None:
    for p in container.get("ports") or []:
        if target == p.get("containerPort") or (isinstance(target, str) and target == p.get("name")):
            return p["containerPort"]
    return None


def rendered(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {directory} failed: {out.stderr.strip()}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def main() -> int:
    schemas = k8s_schema.Schemas([ISTIO_CRD])
    files = sorted(p for p in ISTIO_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    all_docs = [(f"{rel(p)} {d.get('kind')}", d) for p in files for d in k8s_schema.load_docs(p)]

    # 1. schemas, and the commented targetRefs variant
    check_schemas(schemas, all_docs)
    text = WASMPLUGIN_YAML.read_text(encoding="utf-8")
    plugin = one(k8s_schema.load_docs(WASMPLUGIN_YAML), "WasmPlugin", rel(WASMPLUGIN_YAML))
    variant = k8s_schema.deepcopy(plugin)
    variant["spec"].pop("selector", None)
    variant["spec"]["targetRefs"] = targetrefs_variant(text)
    check_schemas(schemas, [("wasmplugin.yaml with its commented targetRefs instead of selector", variant)])
    both = k8s_schema.deepcopy(variant)
    both["spec"]["selector"] = plugin["spec"].get("selector") or {"matchLabels": {"a": "b"}}
    assert schemas.validate(both, "both"), "the schema check accepts selector and targetRefs together (CEL rule not applied)"

    # 2. the WasmPlugin and the token server it names
    spec = plugin["spec"]
    assert plugin["apiVersion"] == API_VERSION, f"wasmplugin.yaml: apiVersion {plugin['apiVersion']!r}, expected {API_VERSION}"
    assert spec.get("phase") == "AUTHN", "wasmplugin.yaml: phase must be AUTHN"
    assert spec.get("failStrategy") == "FAIL_CLOSE", "wasmplugin.yaml: failStrategy must stay FAIL_CLOSE"
    assert (spec.get("selector") or {}).get("matchLabels") or spec.get("targetRefs"), (
        "wasmplugin.yaml: no selector.matchLabels nor targetRefs: it would apply to every proxy of its namespace"
    )
    plugin_config = json.loads(PLUGIN_CONFIG.read_text(encoding="utf-8"))
    config = spec.get("pluginConfig") or {}
    same = {k: v for k, v in config.items() if k != "tokenServerFQDN"}
    want = {k: v for k, v in plugin_config.items() if k != "tokenServerFQDN"}
    assert same == want, (
        "wasmplugin.yaml pluginConfig differs from deploy/plugin-config.json (besides tokenServerFQDN):\n"
        f"  pluginConfig:       {json.dumps(same, sort_keys=True)}\n  plugin-config.json: {json.dumps(want, sort_keys=True)}"
    )
    fqdn, port = config.get("tokenServerFQDN"), config.get("tokenServerPort")
    m = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", str(fqdn))
    assert m, f"wasmplugin.yaml: tokenServerFQDN {fqdn!r} is not <svc>.<ns>.svc.cluster.local (Istio's cluster name)"
    docs = [d for _, d in all_docs]
    services = [
        d for d in docs
        if d["kind"] == "Service" and d["metadata"]["name"] == m.group(1) and d["metadata"].get("namespace") == m.group(2)
    ]
    assert services, f"deploy/istio has no Service {m.group(1)} in namespace {m.group(2)} (tokenServerFQDN {fqdn})"
    service = services[0]
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert m.group(2) in namespaces | {"default"}, f"namespace {m.group(2)} is not created by deploy/istio"
    sports = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert sports, f"Service {m.group(1)} has no port {port}: the cluster outbound|{port}||{fqdn} would not exist"
    sport = sports[0]
    assert sport.get("name", "").split("-")[0] in ("http", "http2") or sport.get("appProtocol") == "http", (
        f"Service {m.group(1)} port {port}: name it http or set appProtocol: http (Istio's protocol selection)"
    )
    deployments = [
        d for d in docs
        if d["kind"] == "Deployment" and d["metadata"].get("namespace") == m.group(2)
        and service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(deployments) == 1, f"Service {m.group(1)} selects {len(deployments)} Deployments of deploy/istio, expected 1"
    container = deployments[0]["spec"]["template"]["spec"]["containers"][0]
    cport = port_matches(container, sport.get("targetPort", sport["port"]))
    assert cport is not None, f"Service targetPort {sport.get('targetPort')!r} is no port of the token-server container"
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    bind = env.get("TOKEN_SERVER_BIND", "")
    assert bind.endswith(f":{cport}"), f"token server binds {bind!r}, the Service targets port {cport}"

    # 3. same token server as deploy/higress
    higress = k8s_schema.load_docs(HIGRESS_TOKEN_SERVER_YAML)
    ours = k8s_schema.load_docs(TOKEN_SERVER_YAML)
    for kind in ("Secret", "Deployment"):
        a, b = one(higress, kind, "higress token-server.yaml"), one(ours, kind, "istio token-server.yaml")
        a = k8s_schema.deepcopy(a)
        a["metadata"]["namespace"] = b["metadata"].get("namespace")
        assert a == b, f"deploy/istio/token-server.yaml {kind} differs from deploy/higress's beyond the namespace"

    # 4. kustomization: every file, the image in one place, the tag
    kust = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    listed = set(kust.get("resources") or [])
    present = {p.name for p in files}
    assert listed == present, f"kustomization.yaml resources {sorted(listed)} != files {sorted(present)}"
    images = kust.get("images") or []
    assert len(images) == 1, f"kustomization.yaml: expected one images: entry (the plugin), found {len(images)}"
    entry = images[0]
    url = spec.get("url")
    assert url == entry.get("name"), (
        f"wasmplugin.yaml url {url!r} is not the placeholder the images: entry names ({entry.get('name')!r})"
    )
    assert url.startswith("oci://") and not re.search(r"[:@]", url.removeprefix("oci://")), (
        f"placeholder {url!r} must be oci://<name> with no tag or digest"
    )
    field_specs = []
    for c in kust.get("configurations") or []:
        field_specs += (yaml.safe_load((ISTIO_DIR / c).read_text(encoding="utf-8")) or {}).get("images") or []
    assert any(
        fs.get("group") == "extensions.istio.io" and fs.get("kind") == "WasmPlugin" and fs.get("path") == "spec/url"
        for fs in field_specs
    ), "kustomization.yaml configurations: no images field spec for extensions.istio.io WasmPlugin spec/url"
    with CARGO_TOML.open("rb") as f:
        version = tomllib.load(f)["package"]["version"]
    new_name = entry.get("newName") or ""
    assert new_name.startswith("oci://"), f"images: newName {new_name!r} must keep the oci:// scheme"
    tag, digest = entry.get("newTag"), entry.get("digest")
    assert bool(tag) != bool(digest), "images: set exactly one of newTag and digest"
    if tag is not None:
        assert isinstance(tag, str) and tag != "latest", f"images: newTag {tag!r} must be a quoted version, never latest"
        assert tag == version, f"images: newTag {tag!r} != Cargo.toml version {version!r} (what make push tags)"
        want_url = f"{new_name}:{tag}"
    else:
        assert DIGEST.fullmatch(str(digest)), f"images: digest {digest!r} is not sha256:<64 hex>"
        want_url = f"{new_name}@{digest}"

    # 5. kubectl kustomize
    if shutil.which("kubectl") is None:
        print("check_istio: note: no kubectl on PATH, `kubectl kustomize deploy/istio` rendering not checked")
    else:
        out = rendered(ISTIO_DIR)
        check_schemas(schemas, [(f"kubectl kustomize deploy/istio: {d.get('kind')}", d) for d in out])
        assert len(out) == len(all_docs), f"kubectl kustomize renders {len(out)} resources, the files hold {len(all_docs)}"
        got = one(out, "WasmPlugin", "kubectl kustomize deploy/istio")["spec"]["url"]
        assert got == want_url, f"kubectl kustomize deploy/istio: url {got!r}, expected {want_url!r}"
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "istio"
            shutil.copytree(ISTIO_DIR, copy)
            pinned = {k: v for k, v in entry.items() if k != "newTag"}
            pinned["digest"] = "sha256:" + "0123456789abcdef" * 4
            (copy / "kustomization.yaml").write_text(yaml.safe_dump({**kust, "images": [pinned]}, sort_keys=False), encoding="utf-8")
            got = one(rendered(copy), "WasmPlugin", "digest-pinned render")["spec"]["url"]
            assert got == f"{new_name}@{pinned['digest']}", f"digest-pinned render gave url {got!r}"
        print(f"check_istio: kubectl kustomize renders {len(out)} valid resources, url {want_url}")
    # 6. the README sections
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    layer_type = re.search(r"\./plugin\.tar\.gz:(\S+)", makefile)
    assert layer_type, "Makefile: no ./plugin.tar.gz:<media type> layer of make push"
    for readme in ("README.md", "README_ZH.md"):
        body = (ROOT / readme).read_text(encoding="utf-8")
        sec = re.search(r"^### Istio\n(.*?)^### ", body, re.S | re.M)
        assert sec, f"{readme}: no `### Istio` section followed by another ### section"
        section = sec.group(1)
        for needle in (
            "kubectl apply -k deploy/istio/", f"newName: {new_name}", f'newTag: "{tag}"' if tag else "digest",
            f"tokenServerFQDN: {fqdn}", f"tokenServerPort: {port}", layer_type.group(1), "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG",
        ):
            assert needle in section, f"{readme} Istio section does not say {needle!r} (deploy/istio or the Makefile changed?)"

    print(f"check_istio: OK ({len(all_docs)} resources valid against {ISTIO_CRD.name} and kubernetes-definitions.json)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"check_istio: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
