#!/usr/bin/env bash
# Runs README.md's quick-start curl block (between the readme-test markers) against the `make dev`
# setup: the reference token server on 127.0.0.1:9090 and the gateway binary with plugin.wasm on
# 127.0.0.1:10000 (admin 9901), then checks what each command must show.
# Usage: tests/readme_commands.sh [BIN_DIR]   (default target/debug; `make dev` uses target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug}
log=target/readme-commands
mkdir -p "$log"

"$bin/token-server" --bind 127.0.0.1:9090 >"$log/token-server.log" 2>&1 &
token_server=$!
"$bin/easy-jwt-gateway" --plugin plugin.wasm --config deploy/plugin-config.json >"$log/gateway.log" 2>&1 &
gateway=$!
trap 'kill $token_server $gateway 2>/dev/null || true; wait 2>/dev/null || true' EXIT

ready=0
for _ in $(seq 1 240); do
  if curl -sf http://127.0.0.1:9901/ready >/dev/null && curl -sf http://127.0.0.1:9090/healthz >/dev/null; then
    ready=1
    break
  fi
  sleep 0.5
done
if [ "$ready" != 1 ]; then
  echo "readme: gateway or token server did not start"; cat "$log"/*.log; exit 1
fi

sed -n '/<!-- readme-test:start -->/,/<!-- readme-test:end -->/p' README.md | sed '/^```/d;/^<!--/d' >"$log/commands.sh"
echo "readme: running $(grep -c . "$log/commands.sh") commands from README.md"
bash -eu "$log/commands.sh" >"$log/output.txt" 2>&1 || { cat "$log/output.txt"; exit 1; }

failures=0
expect() {
  if grep -qF -- "$1" "$log/output.txt"; then echo "ok: $2"; else echo "FAILED: $2 (missing: $1)"; failures=$((failures + 1)); fi
}
expect 'HTTP/1.1 401' "no token is refused with 401"
expect '{"message":"missing token"}' "the refusal carries the JSON message"
expect 'HTTP/1.1 200' "a valid token goes upstream"
expect '["x-auth-user","100"]' "the echo upstream sees x-auth-user: 100"
expect '["x-auth-user","0"]' "an ignored path gets the anonymous uid"
expect 'easy_jwt.allowed: 1' "stats count the allowed request"
expect 'easy_jwt.token_missing: 1' "stats count the refused request"
expect 'easy_jwt.ignored: 1' "stats count the ignored request"
if [ "$failures" -ne 0 ]; then
  echo "--- output"; cat "$log/output.txt"; echo "--- gateway log"; tail -20 "$log/gateway.log"
fi
echo "readme: $((8 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
