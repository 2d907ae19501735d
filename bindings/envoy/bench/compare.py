"""`make bench-envoy`: Envoy 1.40 with no auth, with its own jwt_authn (without and with its
token cache) and with jwtguard (without and with its token cache, the default), side by side in one Envoy process (--concurrency 1, one
listener each), interleaved rounds of wrk with the same RS256 token. Prints req/s, p50/p99
latency and each auth's share of the no-auth throughput.

    BENCH_SECONDS=5 BENCH_ROUNDS=3 make bench-envoy
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bindings" / "envoy" / "tests"))

from conftest import envoy_binary, upstream_cluster  # noqa: E402
from harness import AUDIENCE, DevIssuer, free_port, wait_ok  # noqa: E402

SECONDS = max(1, round(float(os.environ.get("BENCH_SECONDS", "5"))))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
# Processes to prefix with `taskset` (set by bench/report.py to keep wrk and Envoy apart).
CLIENT_CPU: list[str] = []
SERVER_CPU: list[str] = []
BODY = '{"message":"Hello from a private endpoint! You need to be authenticated to see this."}\n'


def listener(name: str, port: int, filters: list[dict]) -> dict:
    route = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": BODY}}}
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"name": name, "virtual_hosts": [{"name": name, "domains": ["*"], "routes": [route]}]},
                "http_filters": filters + [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
            },
        }]}],
    }


def jwt_authn(issuer: DevIssuer, cache: bool) -> dict:
    provider = {
        "issuer": issuer.url,
        "audiences": [AUDIENCE],
        "remote_jwks": {
            "http_uri": {"uri": issuer.jwks_uri, "cluster": "issuer", "timeout": "5s"},
            "cache_duration": "600s",
            "async_fetch": {},
        },
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"dev": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "dev"}}],
    }}


def jwtguard(issuer: DevIssuer, token_cache: int | None = None) -> dict:
    value = {"issuer": issuer.url, "audience": AUDIENCE, "jwks_uri": issuer.jwks_uri}
    if token_cache is not None:
        value["token_cache"] = token_cache
    return {"name": "jwtguard", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
        "dynamic_module_config": {"name": "jwtguard_envoy"},
        "filter_name": "jwtguard",
        "filter_config": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": value},
    }}


def wrk(url: str, token: str | None = None, seconds: float = SECONDS, script: Path | None = None,
        tokens: Path | None = None) -> tuple[float, float, float]:
    """(req/s, p50 ms, p99 ms) of one wrk run; any error answer or socket error fails the run.
    `script` with `tokens`: bench/tokens.lua and its token file (bench/report.py)."""
    command = [*CLIENT_CPU, "wrk", "-t", "1", "-c", str(CONNECTIONS), "-d", f"{max(1, round(seconds))}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    if script:
        command += ["-s", str(script)]
    command.append(url)
    if tokens:
        command += ["--", str(tokens)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        raise SystemExit(f"bench: {url} answered errors:\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), ms("50%"), ms("99%")


def measure(seconds: float = SECONDS, rounds: int = ROUNDS) -> dict[str, list[tuple[float, float, float]]]:
    """Every configuration's (req/s, p50 ms, p99 ms) per round, rounds interleaved."""
    issuer = DevIssuer()
    ports = {name: free_port() for name in
             ("no auth", "jwt_authn", "jwt_authn + cache", "jwtguard, no token cache", "jwtguard")}
    admin = free_port()
    issuer_port = int(issuer.url.rsplit(":", 1)[1].strip("/"))
    config = {
        "static_resources": {
            "listeners": [
                listener("noauth", ports["no auth"], []),
                listener("jwtauthn", ports["jwt_authn"], [jwt_authn(issuer, cache=False)]),
                listener("jwtauthncache", ports["jwt_authn + cache"], [jwt_authn(issuer, cache=True)]),
                listener("jwtguardnocache", ports["jwtguard, no token cache"], [jwtguard(issuer, token_cache=0)]),
                listener("jwtguard", ports["jwtguard"], [jwtguard(issuer)]),
            ],
            "clusters": [upstream_cluster("issuer", issuer_port)],
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    }
    work = Path(tempfile.mkdtemp(prefix="jwtguard-bench-envoy-"))
    (work / "envoy.json").write_text(json.dumps(config))
    envoy = subprocess.Popen(
        [*SERVER_CPU, envoy_binary(), "-c", str(work / "envoy.json"), "--concurrency", "1", "-l", "warning",
         "--base-id", str(admin)],
        env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=str(ROOT / "target" / "release")),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        token = issuer.token("read:messages")
        for name, port in ports.items():
            wait_ok(f"http://127.0.0.1:{port}/", token, f"bench-envoy: {name}")
        results: dict[str, list] = {name: [] for name in ports}
        for _ in range(rounds):
            for name, port in ports.items():
                results[name].append(wrk(f"http://127.0.0.1:{port}/", token, seconds))
        return results
    finally:
        envoy.terminate()
        envoy.wait(timeout=20)
        issuer.stop()


def main() -> int:
    results = measure()
    base = statistics.median(r[0] for r in results["no auth"])
    print(f"Envoy 1.40, --concurrency 1, wrk -t1 -c{CONNECTIONS}, {ROUNDS} interleaved rounds of {SECONDS} s, "
          "one RS256 token (medians)")
    print(f"{'':<20}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'of no auth':>12}")
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        p99 = statistics.median(r[2] for r in runs)
        print(f"{name:<20}{rate:>10.0f}{p50:>9.2f}{p99:>9.2f}{rate / base:>11.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
