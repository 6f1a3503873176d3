# easy-jwt — build, test and run the plugin. `make help` lists the targets.

SHELL := /bin/bash
CARGO ?= cargo
TARGET := wasm32-wasip1
PROFILE := wasm-release
WASM_DIR := target/$(TARGET)/$(PROFILE)
IMAGE ?= easy-jwt:latest
FUZZ_SECONDS ?= 30
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --strip-debug --strip-producers

.DEFAULT_GOAL := help
.PHONY: help toolchain build build-test-plugins test test-unit test-deploy dev run image push lint \
	clean bench bench-throughput soak fuzz

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

toolchain: ## Install the wasm32-wasip1 target (rustup)
	@rustup target list --installed | grep -qx $(TARGET) || rustup target add $(TARGET)

build: toolchain ## Build plugin.wasm (release, size-tuned; wasm-opt -Oz when installed)
	$(CARGO) build --locked --target $(TARGET) --profile $(PROFILE) -p easy-jwt
	@if command -v wasm-opt >/dev/null; then \
		wasm-opt $(WASM_OPT_FLAGS) $(WASM_DIR)/easy_jwt.wasm -o plugin.wasm; \
	else \
		echo "wasm-opt not found (apt-get install binaryen): shipping the unoptimised module"; \
		cp $(WASM_DIR)/easy_jwt.wasm plugin.wasm; \
	fi
	@echo "plugin.wasm: $$(stat -c %s plugin.wasm) bytes"

build-test-plugins: toolchain ## Build the host's probe and no-op test plugins
	$(CARGO) build --locked --target $(TARGET) --profile $(PROFILE) -p probe-plugin -p noop-plugin

test: build build-test-plugins ## Unit, host and end-to-end tests of the real artifact, deploy checks, README commands
	$(CARGO) test --locked --workspace
	$(MAKE) --no-print-directory test-deploy
	$(CARGO) build --locked -p token-server -p easy-jwt-host --bin token-server --bin easy-jwt-gateway
	tests/readme_commands.sh target/debug

test-unit: ## Unit tests of the plugin core only (no wasm needed)
	$(CARGO) test --locked -p easy-jwt --lib

test-deploy: ## Check envoy.yaml (as an Envoy v3 Bootstrap), docker-compose.yaml and the Higress manifests
	python3 tests/deploy/check_manifests.py target/higress-delivered.json
	python3 tests/deploy/check_envoy_bootstrap.py
	docker-compose -f docker-compose.yaml config -q && echo "docker-compose config: ok"

dev: build ## Run the plugin here: token server on :9090, gateway on :10000 (Ctrl-C stops both)
	$(CARGO) build --locked --release -p token-server -p easy-jwt-host --bin token-server --bin easy-jwt-gateway
	@trap 'kill $$ts 2>/dev/null' EXIT INT TERM; \
	target/release/token-server --bind 127.0.0.1:9090 & ts=$$!; \
	target/release/easy-jwt-gateway --plugin plugin.wasm --config deploy/plugin-config.json

run: build ## docker compose up (Higress gateway image + token server + echo server)
	docker compose up --build

image: build ## Build the OCI image of the plugin (IMAGE=repo/name:tag)
	docker build -f deploy/Dockerfile -t $(IMAGE) .

push: image ## Push the OCI image (IMAGE=repo/name:tag)
	docker push $(IMAGE)

lint: ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --target $(TARGET) -p easy-jwt -- -D warnings

bench: build build-test-plugins ## Per-request cost vs a no-op plugin, and artifact size
	$(CARGO) run --locked --release -p easy-jwt-host --bin easy-jwt-bench -- --plugin plugin.wasm \
		--noop $(WASM_DIR)/noop_plugin.wasm

bench-throughput: build build-test-plugins ## Gateway req/s: no plugin (noop) vs plugin with and without cache
	bench/throughput.sh

soak: build ## One million requests through one VM: hung requests, traps, memory growth
	$(CARGO) run --locked --release -p easy-jwt-host --bin easy-jwt-soak -- --plugin plugin.wasm

fuzz: ## Fuzz each target FUZZ_SECONDS seconds from the fuzz/seeds corpus (cargo-fuzz, nightly); fails on a crash
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@targets="$$($(CARGO) +nightly fuzz list)" || exit 1; for t in $$targets; do \
		echo "== fuzz $$t: $(FUZZ_SECONDS) s"; \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/ || exit 1; \
		$(CARGO) +nightly fuzz run $$t fuzz/corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
			-timeout=10 -print_final_stats=1 || exit 1; \
	done

clean: ## Remove build outputs
	$(CARGO) clean
	rm -f plugin.wasm
