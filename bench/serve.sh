#!/usr/bin/env bash
# `make bench-serve`: checks/s of `jwtguard serve` on one core. The service runs with one
# worker thread pinned to CPU 0, wrk (1 thread, 32 connections) on CPU 1, against a local dev
# issuer: a hot token on the scoped route (a token-cache hit and a scope check), then the
# public route (no token looked at) as the service's own ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${JWTGUARD_BIN:-target/release/jwtguard}
SECONDS_EACH=${BENCH_SECONDS:-10}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

"$BIN" dev-issuer --audience https://api.example > "$work/issuer.out" 2>/dev/null &
for _ in $(seq 50); do [ -s "$work/issuer.out" ] && break; sleep 0.1; done
issuer=$(head -1 "$work/issuer.out")
sed -e "s#http://127.0.0.1:8080/#$issuer#" -e 's#127.0.0.1:9191#127.0.0.1:0#' \
    -e 's#127.0.0.1:9192#127.0.0.1:0#' -e 's/^# workers = 2 .*/workers = 1/' \
    bindings/proxies/jwtguard-serve.toml > "$work/serve.toml"
taskset -c 0 "$BIN" serve --config "$work/serve.toml" > "$work/serve.out" 2>/dev/null &
for _ in $(seq 50); do [ -s "$work/serve.out" ] && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1)/
token=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"audience":"https://api.example","scope":"read:messages"}' "${issuer}oauth/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H 'X-Original-URI: /api/private-scoped' "$url")
[ "$status" = 200 ] || { echo "bench-serve: the check answered $status" >&2; exit 1; }

run() {
    taskset -c 1 wrk -t1 -c32 -d"${SECONDS_EACH}s" "$@" "$url" |
        awk '/Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$NF} /^ +Latency/ {lat=$2}
             END {printf "%10.0f checks/s  mean latency %s  non-2xx %s\n", rps, lat, bad ? bad : 0}'
}
echo "jwtguard serve, 1 worker thread on CPU 0; wrk -t1 -c32 on CPU 1; ${SECONDS_EACH} s each"
printf '%-44s' "hot token, /api/private-scoped:"
run -H "Authorization: Bearer $token" -H 'X-Original-URI: /api/private-scoped'
printf '%-44s' "public route (no token looked at):"
run -H 'X-Original-URI: /api/public'
