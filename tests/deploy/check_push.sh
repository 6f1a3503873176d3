#!/usr/bin/env bash
# Checks `make push` (the Higress plugin image, pushed with oras) and `make image` without a
# registry, oras or a Docker engine: it reads what `make -n` would run.
#
#   PYTHON=target/pyenv/bin/python tests/deploy/check_push.sh      (make test-deploy runs it)
#
#  1. `make -n push IMAGE_REPO=…` has one `oras push` whose artifact type is oras 1.0's image config
#     type (what Higress's images have), whose reference is IMAGE_REPO:<Cargo.toml version>, and whose
#     last four arguments are spec.yaml, README.md, README_ZH.md and plugin.tar.gz with Higress's
#     media types, plugin.tar.gz last; it checks oras is ORAS_VERSION first. IMAGE= overrides the
#     reference; no registry, no tag or the tag latest (without ALLOW_LATEST=1) stop make at once.
#  2. the staging commands `make -n push` prints (spec.yaml, README copies, plugin.tar.gz), run into a
#     temporary OCI_DIR, give: a spec.yaml that tests/deploy/check_spec.py accepts, the READMEs as
#     they are, and a gzip'd tar holding exactly plugin.wasm (the file Higress's gateway extracts
#     from the last layer), byte for byte, owner 0, mtime 0, the same bytes on every run.
#  2b. Istio's image fetcher (its rule, restated from istio/istio pkg/wasm/imagefetcher.go), given
#     the manifest oras 1.0 writes for those operands (OCI image manifest, layers in operand order),
#     extracts exactly ./plugin.wasm from the last layer; with plugin.tar.gz moved off the end it
#     finds nothing (so the check depends on the layer order).
#  3. `make -n image` builds deploy/Dockerfile for linux/amd64, tagged easy-jwt:<version>.
# Needs plugin.wasm at the repository root (make build) and PyYAML/jsonschema in $PYTHON.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# Run as a recipe of `make test-deploy`: the inner make must not inherit the outer one's flags.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
py=${PYTHON:-target/pyenv/bin/python}
fail() { echo "check_push: FAILED: $*" >&2; exit 1; }
[ -f plugin.wasm ] || fail "plugin.wasm is missing: run make build"
version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
[ -n "$version" ] || fail "no [package] version in Cargo.toml"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repo=registry.example.com/team/easy-jwt

# make -n, with continuation lines joined: one shell command per line.
dry() { make --no-print-directory -n "$@" | sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta'; }

# 1. the oras command line
dry push IMAGE_REPO="$repo" OCI_DIR="$tmp/oci" > "$tmp/push.sh" || fail "make -n push IMAGE_REPO=$repo failed"
"$py" - "$tmp/push.sh" "$tmp/oci" "$repo:$version" "$version" <<'EOF' || exit 1
import re, shlex, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
oci, ref, version = sys.argv[2], sys.argv[3], sys.argv[4]
def fail(msg):
    print(f"check_push: FAILED: {msg}", file=sys.stderr); sys.exit(1)
pushes = [l for l in lines if re.search(r"\boras push\b", l)]
if len(pushes) != 1:
    fail(f"make -n push prints {len(pushes)} oras push commands, expected 1:\n" + "\n".join(pushes))
line = pushes[0]
prefix = f"cd {oci} && "
if not line.startswith(prefix):
    fail(f"oras push does not run in OCI_DIR ({prefix!r}): {line}")
argv = shlex.split(line[len(prefix):])
if argv[:2] != ["oras", "push"]:
    fail(f"not an oras push: {argv}")
args = argv[2:]
def flag(name):
    vals = [args[i + 1] for i, a in enumerate(args[:-1]) if a == name]
    return vals
if flag("--artifact-type") != ["application/vnd.unknown.config.v1+json"]:
    fail(f"--artifact-type {flag('--artifact-type')}, expected oras 1.0's image config type "
         "application/vnd.unknown.config.v1+json (the manifest Higress's own images have)")
annotations = dict(a.split("=", 1) for a in flag("--annotation"))
if annotations.get("org.opencontainers.image.version") != version:
    fail(f"annotation org.opencontainers.image.version {annotations.get('org.opencontainers.image.version')!r} != {version!r}")
positional = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))]
want_layers = [
    "./spec.yaml:application/vnd.module.wasm.spec.v1+yaml",
    "./README.md:application/vnd.module.wasm.doc.v1+markdown",
    "./README_ZH.md:application/vnd.module.wasm.doc.v1.ZH+markdown",
    "./plugin.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip",
]
if positional != [ref, *want_layers]:
    fail(f"oras push operands {positional}, expected {[ref, *want_layers]}")
checks = [l for l in lines if "version" in l and "ORAS_VERSION=" in l]
if not checks or not re.search(r"\[ \"\$\{v%%\+\*\}\" = '\d+\.\d+\.\d+' \]", checks[0]):
    fail("make push does not check `oras version` against ORAS_VERSION before pushing")
pinned = re.search(r"'(\d+\.\d+\.\d+)' \]", checks[0]).group(1)
if not pinned.startswith("1.0."):
    fail(f"ORAS_VERSION {pinned}: from oras 1.1 on --artifact-type sets the manifest's artifactType instead "
         "of the config media type, so the manifest would no longer be Higress's: revisit the oras push line first")
if not any(f"go install oras.land/oras/cmd/oras@v{pinned}" in l for l in lines):
    fail(f"make push does not tell how to install oras {pinned} when oras is missing")
print(f"check_push: oras {pinned} push {ref}: artifact type, annotations and the 4 layers in Higress's order")
EOF

# IMAGE= overrides the whole reference; the guards stop make before anything runs.
dry push IMAGE=localhost:5000/x/easy-jwt:1.2.3 | grep -q "push .* 'localhost:5000/x/easy-jwt:1.2.3' ./spec.yaml" \
  || fail "make -n push IMAGE=localhost:5000/x/easy-jwt:1.2.3 does not push that reference"
expect_refusal() {  # expect_refusal WORDS ARGS...: make -n push ARGS fails, saying WORDS
  local words=$1; shift
  if out=$(make --no-print-directory -n push "$@" 2>&1); then fail "make -n push $* succeeded"; fi
  grep -q "$words" <<<"$out" || fail "make -n push $*: no '$words' in: $out"
}
expect_refusal "names no registry" IMAGE_REPO=easy-jwt
expect_refusal "has no tag" IMAGE=registry.example.com/easy-jwt
expect_refusal "refusing the tag latest" IMAGE=registry.example.com/easy-jwt:latest
dry push IMAGE=registry.example.com/easy-jwt:latest ALLOW_LATEST=1 >/dev/null \
  || fail "make -n push ... ALLOW_LATEST=1 refused"

# 2. run the staging commands make push prints, into the temporary OCI_DIR
start=$(grep -n -m1 "^rm -rf $tmp/oci" "$tmp/push.sh" | cut -d: -f1) || fail "no 'rm -rf OCI_DIR' in make -n push"
end=$(grep -n -m1 "gzip -9n > $tmp/oci/plugin.tar.gz" "$tmp/push.sh" | cut -d: -f1) || fail "no plugin.tar.gz in make -n push"
sed -n "${start},${end}p" "$tmp/push.sh" > "$tmp/stage.sh"
bash -e "$tmp/stage.sh" >/dev/null
cp "$tmp/oci/plugin.tar.gz" "$tmp/first.tar.gz"
bash -e "$tmp/stage.sh" >/dev/null
cmp -s "$tmp/first.tar.gz" "$tmp/oci/plugin.tar.gz" || fail "plugin.tar.gz differs between two runs (not reproducible)"
[ "$(cd "$tmp/oci" && ls | sort | tr '\n' ' ')" = "README.md README_ZH.md plugin.tar.gz spec.yaml " ] \
  || fail "OCI_DIR holds $(ls "$tmp/oci"), expected README.md README_ZH.md plugin.tar.gz spec.yaml"
cmp -s README.md "$tmp/oci/README.md" && cmp -s README_ZH.md "$tmp/oci/README_ZH.md" || fail "README copies differ"
"$py" tests/deploy/check_spec.py "$tmp/oci/spec.yaml" >/dev/null || fail "the staged spec.yaml fails tests/deploy/check_spec.py"
"$py" - "$tmp/oci/plugin.tar.gz" plugin.wasm <<'EOF' || exit 1
import gzip, io, sys, tarfile
layer, wasm = sys.argv[1], sys.argv[2]
def fail(msg):
    print(f"check_push: FAILED: plugin.tar.gz: {msg}", file=sys.stderr); sys.exit(1)
raw = open(layer, "rb").read()
if raw[:2] != b"\x1f\x8b":
    fail("not gzip (the layer media type is application/vnd.oci.image.layer.v1.tar+gzip)")
if int.from_bytes(raw[4:8], "little") != 0 or raw[3] & 0x08:
    fail("gzip header carries a timestamp or a file name (gzip -n)")
with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tar:
    members = tar.getmembers()
    if [m.name for m in members] != ["plugin.wasm"] or not members[0].isfile():
        fail(f"members {[m.name for m in members]}, expected the one file plugin.wasm")
    m = members[0]
    if (m.uid, m.gid, m.mtime) != (0, 0, 0):
        fail(f"plugin.wasm has uid/gid/mtime {m.uid}/{m.gid}/{m.mtime}, expected 0/0/0")
    if tar.extractfile(m).read() != open(wasm, "rb").read():
        fail("plugin.wasm in the layer differs from ./plugin.wasm")
print(f"check_push: staged layers OK (plugin.tar.gz {len(raw)} bytes, reproducible)")
EOF

# 2b. Istio's wasm image fetcher (istio/istio pkg/wasm/imagefetcher.go, PrepareFetch; Envoy Gateway's
# internal/wasm/imagefetcher.go is the same code) on the image make push builds: oras 1.0 writes an
# OCI image manifest whose layers are the `oras push` operands in order, with their media types.
"$py" - "$tmp/push.sh" "$tmp/oci" plugin.wasm <<'EOF' || exit 1
import gzip, io, os, re, shlex, sys, tarfile
push_sh, oci, wasm_path = sys.argv[1:4]
def fail(msg):
    print(f"check_push: FAILED: Istio's image fetcher: {msg}", file=sys.stderr); sys.exit(1)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"

def plugin_wasm(blob):
    """extractWasmPluginBinary: the first tar entry whose base name is plugin.wasm, in a tar.gz."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
        for m in tar.getmembers():
            if os.path.basename(m.name) == "plugin.wasm":
                return tar.extractfile(m).read()
    raise ValueError("plugin.wasm not found in the archive")

def istio_fetch(manifest_media_type, layers):
    """PrepareFetch's binaryFetcher: layers is [(media type, blob)] in manifest order."""
    if not layers:
        raise ValueError("number of layers must be greater than zero")
    media_type, blob = layers[-1]
    if manifest_media_type == DOCKER_MANIFEST:          # extractDockerImage
        if media_type != DOCKER_LAYER:
            raise ValueError(f"invalid media type {media_type} (expect {DOCKER_LAYER})")
        return plugin_wasm(blob)
    errors = []
    if media_type == OCI_LAYER:                          # extractOCIStandardImage (compat variant)
        try:
            return plugin_wasm(blob)
        except Exception as e:
            errors.append(f"compat: {e}")
    else:
        errors.append(f"compat: invalid media type {media_type} (expect {OCI_LAYER})")
    if len(layers) != 2:                                 # extractOCIArtifactImage (oci variant)
        errors.append(f"oci: number of layers must be 2 but got {len(layers)}")
    else:
        wasm = [b for t, b in layers if t == WASM_LAYER]
        if wasm:
            return wasm[0]
        errors.append(f"oci: could not find the layer of type {WASM_LAYER}")
    raise ValueError("; ".join(errors))

line = next(l for l in open(push_sh, encoding="utf-8").read().splitlines() if re.search(r"\boras push\b", l))
args = shlex.split(line.split(" && ", 1)[1])[2:]
operands = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))][1:]
layers = []
for op in operands:
    path, media_type = op.rsplit(":", 1)
    layers.append((media_type, open(os.path.join(oci, path), "rb").read()))
want = open(wasm_path, "rb").read()
try:
    got = istio_fetch(OCI_MANIFEST, layers)
except ValueError as e:
    fail(f"rejects the {len(layers)}-layer image of make push: {e}")
if got != want:
    fail("the module it extracts from make push's image is not ./plugin.wasm")
# The order is what makes it work: with plugin.tar.gz anywhere but last, Istio finds no module.
for i in range(len(layers) - 1):
    moved = layers[:i] + layers[i + 1:] + [layers[i]]
    try:
        istio_fetch(OCI_MANIFEST, moved)
    except ValueError:
        continue
    fail(f"the model accepts the image with {operands[i]} last: it does not test the layer order")
print(f"check_push: Istio's fetcher takes plugin.wasm from the last of the {len(layers)} layers of make push's image")
EOF

# 3. the Docker image
img=$(dry image | grep '^docker build') || fail "make -n image runs no docker build"
for want in "--platform linux/amd64" "-f deploy/Dockerfile" "--provenance=false"; do
  grep -qF -- "$want" <<<"$img" || fail "make -n image: no '$want' in: $img"
done
grep -qE -- "-t '?easy-jwt:${version//./\\.}'? " <<<"$img" || fail "make -n image: not tagged easy-jwt:$version: $img"
echo "check_push: OK"
