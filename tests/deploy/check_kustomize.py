#!/usr/bin/env python3
"""Check where deploy/higress takes the plugin image from, and the WasmPlugin's operating fields.

Usage (from anywhere; paths are relative to the repository root):

    target/pyenv/bin/python tests/deploy/check_kustomize.py

`make test-deploy` runs it. Checks (exits 1 with a message on the first failure):
  1. the image is set in one place: wasmplugin.yaml's `url` is a placeholder that the single
     `images:` entry of kustomization.yaml names, and `configurations:` teaches kustomize's image
     transformer the WasmPlugin field spec/url;
  2. that entry keeps the `oci://` scheme and is tagged with the root Cargo.toml version (what
     `make push` tags by default), or pinned by a sha256 digest; never `latest`;
  3. the WasmPlugin uses only fields of Higress's WasmPlugin CRD (extensions.higress.io/v1alpha1),
     with valid enum values, phase AUTHN, an integer priority and failStrategy FAIL_CLOSE;
  4. when `kubectl` is on PATH: `kubectl kustomize deploy/higress` renders the WasmPlugin's url as
     oci://<newName>:<newTag>, and a copy whose entry has `digest:` instead renders
     oci://<newName>@sha256:… (skipped, with a note, without kubectl: no cluster is needed).
Needs PyYAML (target/pyenv: `make pyenv`).
"""

from __future__ import annotations

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
except ImportError:  # pragma: no cover - environment problem
    sys.exit("check_kustomize: FAILED: PyYAML is missing; run `make pyenv` and use target/pyenv/bin/python")

ROOT = Path(__file__).resolve().parents[2]
HIGRESS_DIR = ROOT / "deploy" / "higress"
KUSTOMIZATION = HIGRESS_DIR / "kustomization.yaml"
WASMPLUGIN_YAML = HIGRESS_DIR / "wasmplugin.yaml"
CARGO_TOML = ROOT / "Cargo.toml"

# spec fields of Higress's WasmPlugin CRD (helm/core/crds/customresourcedefinitions.gen.yaml in
# alibaba/higress; api/extensions/v1alpha1/wasmplugin.proto) and the enums among them.
CRD_FIELDS = {
    "url", "sha256", "imagePullPolicy", "imagePullSecret", "verificationKey", "pluginConfig",
    "pluginName", "phase", "priority", "failStrategy", "vmConfig", "defaultConfig", "matchRules",
    "defaultConfigDisable",
}
CRD_ENUMS = {
    "phase": {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"},
    "imagePullPolicy": {"UNSPECIFIED_POLICY", "IfNotPresent", "Always"},
    "failStrategy": {"FAIL_CLOSE", "FAIL_OPEN"},
}
MATCH_RULE_FIELDS = {"ingress", "domain", "service", "config", "configDisable", "routeType"}
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def load_one(path: Path, kind: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, f"{path.name}: expected one {kind}, found {len(found)}"
    return found[0]


def rendered_url(directory: Path) -> str:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {directory} failed: {out.stderr.strip()}"
    plugins = [d for d in yaml.safe_load_all(out.stdout) if d and d.get("kind") == "WasmPlugin"]
    assert len(plugins) == 1, f"kubectl kustomize {directory}: {len(plugins)} WasmPlugins"
    return plugins[0]["spec"]["url"]


def main() -> int:
    with CARGO_TOML.open("rb") as f:
        version = tomllib.load(f)["package"]["version"]
    kust = yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))
    plugin = load_one(WASMPLUGIN_YAML, "WasmPlugin")
    spec = plugin.get("spec") or {}

    # 1. one place
    images = kust.get("images") or []
    assert len(images) == 1, f"kustomization.yaml: expected one images: entry (the plugin), found {len(images)}"
    entry = images[0]
    url = spec.get("url")
    assert url == entry.get("name"), (
        f"wasmplugin.yaml url {url!r} is not the placeholder kustomization.yaml's images: entry names "
        f"({entry.get('name')!r}): the image would not be replaced"
    )
    assert not re.search(r"[:@]", url.removeprefix("oci://")), f"placeholder {url!r} must have no tag or digest"
    configs = kust.get("configurations") or []
    field_specs = []
    for c in configs:
        cfg = yaml.safe_load((HIGRESS_DIR / c).read_text(encoding="utf-8")) or {}
        field_specs += cfg.get("images") or []
    assert any(
        fs.get("kind") == "WasmPlugin" and fs.get("path") == "spec/url" for fs in field_specs
    ), "kustomization.yaml configurations: no images field spec for WasmPlugin spec/url"

    # 2. scheme, tag, digest
    new_name = entry.get("newName") or ""
    assert new_name.startswith("oci://"), f"images: newName {new_name!r} must keep the oci:// scheme"
    tag, digest = entry.get("newTag"), entry.get("digest")
    assert bool(tag) != bool(digest), "images: set exactly one of newTag and digest"
    if tag is not None:
        assert isinstance(tag, str), f"images: newTag {tag!r} must be a quoted string"
        assert tag != "latest", "images: newTag latest makes Higress default imagePullPolicy to Always"
        assert tag == version, (
            f"images: newTag {tag!r} != Cargo.toml version {version!r} (what make push tags): "
            f"update newTag, or pin a digest"
        )
        want = f"{new_name}:{tag}"
    else:
        assert DIGEST.fullmatch(str(digest)), f"images: digest {digest!r} is not sha256:<64 hex>"
        want = f"{new_name}@{digest}"

    # 3. CRD fields
    unknown = sorted(set(spec) - CRD_FIELDS)
    assert not unknown, f"wasmplugin.yaml: {unknown} are not WasmPlugin spec fields"
    for field, allowed in CRD_ENUMS.items():
        if field in spec:
            assert spec[field] in allowed, f"wasmplugin.yaml: {field} {spec[field]!r} not in {sorted(allowed)}"
    assert spec.get("phase") == "AUTHN", "wasmplugin.yaml: phase must be AUTHN"
    assert isinstance(spec.get("priority"), int) and not isinstance(spec["priority"], bool), (
        "wasmplugin.yaml: priority must be an integer"
    )
    assert spec.get("failStrategy") == "FAIL_CLOSE", "wasmplugin.yaml: failStrategy must stay FAIL_CLOSE"
    for i, rule in enumerate(spec.get("matchRules") or []):
        bad = sorted(set(rule) - MATCH_RULE_FIELDS)
        assert not bad, f"wasmplugin.yaml matchRules[{i}]: {bad} are not MatchRule fields"

    # 4. kustomize renders it
    if shutil.which("kubectl") is None:
        print("check_kustomize: note: no kubectl on PATH, `kubectl kustomize` rendering not checked")
    else:
        got = rendered_url(HIGRESS_DIR)
        assert got == want, f"kubectl kustomize deploy/higress: url {got!r}, expected {want!r}"
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "higress"
            shutil.copytree(HIGRESS_DIR, copy)
            pinned = dict(entry)
            pinned.pop("newTag", None)
            pinned["digest"] = "sha256:" + "0123456789abcdef" * 4
            k = dict(kust)
            k["images"] = [pinned]
            (copy / "kustomization.yaml").write_text(yaml.safe_dump(k, sort_keys=False), encoding="utf-8")
            got = rendered_url(copy)
            assert got == f"{new_name}@{pinned['digest']}", f"digest-pinned render gave url {got!r}"
        print(f"check_kustomize: kubectl kustomize renders url {want}")
    print("check_kustomize: OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"check_kustomize: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
