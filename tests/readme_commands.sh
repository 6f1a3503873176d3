#!/usr/bin/env bash
# Runs README.md's quick-start curl block (between the readme-test markers) against the `make dev`
# setup on real Envoy, then checks what each command must show. The setup is the same as
# `make dev`: the repository's envoy.yaml rendered for 127.0.0.1 by tools/render_envoy.py, the
# reference token server on 127.0.0.1:9090, the echo server on 127.0.0.1:3000, and Envoy with
# plugin.wasm on 127.0.0.1:10000 (admin 127.0.0.1:9901).
#
# Usage: tests/readme_commands.sh [BIN_DIR]   (default target/debug; `make dev` uses target/release)
# Environment: ENVOY   Envoy binary (default target/envoy/1.40.0/envoy, installed by `make envoy`)
#              PYTHON  Python with PyYAML for the render (default target/pyenv/bin/python: `make pyenv`)
# `make test` runs it after building everything it needs. It never skips: a missing piece fails
# with the command that provides it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug}
envoy=${ENVOY:-target/envoy/1.40.0/envoy}
python=${PYTHON:-target/pyenv/bin/python}
log=target/readme-commands
mkdir -p "$log"
rm -f "$log"/*.log "$log/output.txt"

fail() { echo "readme: FAILED: $*" >&2; exit 1; }
[ -x "$bin/token-server" ] || fail "no $bin/token-server: cargo build --locked -p token-server (add --release for target/release)"
[ -x "$bin/echo-server" ] || fail "no $bin/echo-server: cargo build --locked -p echo-server (add --release for target/release)"
[ -f plugin.wasm ] || fail "no plugin.wasm: make build"
[ -x "$python" ] || fail "no $python: make pyenv"
command -v "$envoy" >/dev/null || fail "no Envoy at $envoy: make envoy (or ENVOY=/path/to/envoy)"
"$envoy" --version >/dev/null 2>&1 || fail "$envoy --version does not run: make envoy (or ENVOY=/path/to/envoy)"
command -v curl >/dev/null || fail "curl is needed by README's commands: apt-get install curl"

# The ports are fixed by README's commands; something already listening (a `make dev` left
# running?) would answer in place of the processes started here.
for port in 9090 3000 10000 9901; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "127.0.0.1:$port is already in use (is \`make dev\` running?)"
  fi
done

"$python" tools/render_envoy.py --quiet envoy.yaml "$log/envoy.yaml" --plugin plugin.wasm

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
"$bin/token-server" --bind 127.0.0.1:9090 >"$log/token-server.log" 2>&1 &
pids+=($!)
"$bin/echo-server" --bind 127.0.0.1:3000 >"$log/echo-server.log" 2>&1 &
pids+=($!)
# --disable-hot-restart: no shared-memory / domain-socket base id, so this Envoy never collides
# with another one running on the machine (an e2e test, a `make dev`).
"$envoy" -c "$log/envoy.yaml" --component-log-level wasm:debug --disable-hot-restart >"$log/envoy.log" 2>&1 &
pids+=($!)

show_logs() {
  for f in "$log"/*.log; do echo "--- $f (last 30 lines)"; tail -30 "$f"; done
}
ready=0
for _ in $(seq 1 240); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { show_logs; fail "a process exited during startup (logs above)"; }
  done
  if curl -sf http://127.0.0.1:9901/ready >/dev/null && curl -sf http://127.0.0.1:9090/healthz >/dev/null; then
    ready=1
    break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  show_logs
  fail "Envoy's /ready or the token server's /healthz did not answer within 120 s"
fi
version=$("$envoy" --version | grep -o 'version: [^ ]*' | cut -d/ -f2 || true)
echo "readme: Envoy ${version:-?} ($envoy) ready, token server healthy"

sed -n '/<!-- readme-test:start -->/,/<!-- readme-test:end -->/p' README.md | sed '/^```/d;/^<!--/d' >"$log/commands.sh"
[ -s "$log/commands.sh" ] || fail "no commands between the readme-test markers of README.md"
echo "readme: running $(grep -c . "$log/commands.sh") commands from README.md"
bash -eu "$log/commands.sh" >"$log/output.txt" 2>&1 || { cat "$log/output.txt"; show_logs; fail "a README command failed"; }

passed=0
failures=0
expect() {
  if grep -qF -- "$1" "$log/output.txt"; then
    echo "ok: $2"
    passed=$((passed + 1))
  else
    echo "FAILED: $2 (missing: $1)"
    failures=$((failures + 1))
  fi
}
expect 'HTTP/1.1 401' "no token is refused with 401"
expect '{"message":"missing token"}' "the refusal carries the JSON message"
expect 'HTTP/1.1 200' "a valid token goes upstream"
expect '["x-auth-user","100"]' "the echo upstream sees x-auth-user: 100"
expect '["x-auth-user","0"]' "an ignored path gets the anonymous uid"
expect 'wasmcustom.easy_jwt.allowed: 1' "Envoy's stats count the allowed request"
expect 'wasmcustom.easy_jwt.token_missing: 1' "Envoy's stats count the refused request"
expect 'wasmcustom.easy_jwt.ignored: 1' "Envoy's stats count the ignored request"
if [ "$failures" -ne 0 ]; then
  echo "--- output"; cat "$log/output.txt"; show_logs
fi
echo "readme: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
