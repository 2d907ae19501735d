"""The real nginx with ngx_http_jwtguard_module, against a real dev issuer, over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import AUDIENCE, ROOT, DevIssuer, Nginx, example_config, free_port, fresh_prefix
from dpop import ALGS, NO_TOKEN_CHALLENGE, DpopClient, challenge, error
from harness import raw_request, request_bytes

TEST_CONFIG = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 2;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/json;
    jwtguard_issuer {issuer};
    jwtguard_audience {audience};
    server {{
        listen 127.0.0.1:{port};
        root html;
        location = /api/public {{ try_files /api/public.json =404; }}
        location = /vars {{
            jwtguard on;
            add_header X-Sub $jwt_claim_sub always;
            add_header X-Scope $jwt_claim_scope always;
            add_header X-Missing "[$jwt_claim_nope]" always;
            add_header X-Status $jwt_status always;
            add_header X-Claims $jwt_claims always;
            try_files /api/private.json =404;
        }}
        location = /two-scopes {{
            jwtguard on;
            jwtguard_require_scope read:messages write:messages;
            try_files /api/private.json =404;
        }}
        location = /realm {{
            jwtguard on;
            jwtguard_realm "my \\"api\\"";
            try_files /api/private.json =404;
        }}
        location = /dead-issuer {{
            jwtguard on;
            jwtguard_jwks_uri http://127.0.0.1:9/jwks.json;
            try_files /api/private.json =404;
        }}
        location = /other-audience {{
            jwtguard on;
            jwtguard_audience https://other.example;
            try_files /api/private.json =404;
        }}
        location = /dpop-required {{
            jwtguard on;
            jwtguard_dpop required;
            try_files /api/private.json =404;
        }}
        location = /dpop-off {{
            jwtguard on;
            jwtguard_dpop off;
            try_files /api/private.json =404;
        }}
        location = /scoped-only {{
            jwtguard on;
            jwtguard_require_scope read:messages;
            try_files /api/private.json =404;
        }}
        location = /dpop-redirect {{
            jwtguard on;
            try_files /nonexistent /scoped-only;
        }}
        location = /dpop-auth-request {{
            jwtguard on;
            auth_request /scoped-only;
            try_files /api/private.json =404;
        }}
        location = /dpop-short {{
            jwtguard on;
            jwtguard_dpop_window 5s;
            jwtguard_leeway 0;
            jwtguard_dpop_replay_cache 1000;
            try_files /api/private.json =404;
        }}
        location = /dpop-pinned {{
            jwtguard on;
            jwtguard_dpop_url https://api.example$request_uri;
            try_files /api/private.json =404;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def server(issuer):
    port = free_port()
    config = TEST_CONFIG.format(issuer=issuer.url, audience=AUDIENCE, port=port)
    path = fresh_prefix("server")
    nginx = Nginx(path, config, port)
    yield nginx
    nginx.close()
    shutil.rmtree(path, ignore_errors=True)


def test_the_example_config_protects_every_route(issuer, prefix):
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port), port)
    try:
        status, _, body = nginx.get("/api/public")
        assert status == 200 and body["message"].startswith("Hello from a public endpoint")
        for route in ("/api/private", "/api/private-scoped", "/api/private-cookie"):
            status, headers, _ = nginx.get(route)
            assert status == 401, route
            assert headers["WWW-Authenticate"] == NO_TOKEN_CHALLENGE, route
        scoped = issuer.token("read:messages")
        for route in ("/api/private", "/api/private-scoped"):
            status, headers, body = nginx.get(route, scoped)
            assert status == 200, route
            assert body["message"].startswith("Hello from a private endpoint"), route
        assert nginx.get("/api/private", scoped)[1]["X-Subject"] == "dev-client@clients"
        status, headers, body = nginx.get("/api/private-scoped", issuer.token("openid"))
        assert (status, body["code"]) == (403, "Unauthorized")
        status, _, _ = nginx.get("/api/private-cookie", headers={"Cookie": f"access_token={scoped}"})
        assert status == 200
        status, _, body = nginx.get("/api/private-cookie", headers={"Cookie": "access_token=garbage"})
        assert (status, body["code"]) == (401, "invalid_header")
        # Review item 4: the answers' files are not reachable by their own URLs.
        for path in ("/api/private-scoped.json", "/api/private.json", "/api/public.json", "/html/api/private.json",
                     "/api/", "/", "/api/private-scoped/", "/api/private-scoped.json?x=1", "/API/private-scoped.json"):
            status, _, body = nginx.get(path)
            assert status == 404, path
            assert "private" not in json.dumps(body), path
        assert Path(prefix / "jwks-snapshot.json").exists(), "the workers wrote the snapshot"
    finally:
        nginx.close()


def test_statuses_and_challenges(server, issuer):
    status, headers, _ = server.get("/vars")
    assert status == 401
    assert headers["WWW-Authenticate"] == NO_TOKEN_CHALLENGE
    status, headers, _ = server.get("/vars", issuer.token(expires_in=-300))
    assert status == 401
    assert headers["WWW-Authenticate"] == challenge(bearer=error("invalid_token", "Token is expired"))
    status, headers, _ = server.get("/two-scopes", issuer.token("read:messages"))
    assert status == 403
    assert headers["WWW-Authenticate"] == challenge(
        bearer=error("insufficient_scope", "You don't have access to this resource") + ', scope="read:messages write:messages"'
    )
    assert server.get("/two-scopes", issuer.token("read:messages write:messages"))[0] == 200
    # Review 3, item 9: a scheme jwtguard does not take is 401 with a challenge without error
    # (RFC 6750 section 3.1); a malformed header of a scheme it takes stays 400.
    for value in ("Basic dXNlcjpwYXNz", "Token abc", "Digest a=b"):
        status, headers, _ = server.get("/vars", headers={"Authorization": value})
        assert (status, headers["WWW-Authenticate"]) == (401, NO_TOKEN_CHALLENGE), value
        assert headers["X-Status"] == "authorization_scheme_unsupported", value
    status, headers, _ = server.get("/vars", headers={"Authorization": "Bearer"})
    assert status == 400
    assert 'error="invalid_request"' in headers["WWW-Authenticate"]
    status, headers, _ = server.get("/realm")
    assert headers["WWW-Authenticate"] == challenge(realm='my \\"api\\"')
    status, headers, _ = server.get("/other-audience", issuer.token())
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]


def test_dpop_policy_and_url_per_location(server, issuer):
    """This server has no error pages: the reasons are read from the challenges."""
    client = DpopClient("ES256")
    bound, plain = client.token_from(issuer.url), issuer.token()

    def dpop(path, url=None):
        proof = client.proof(url=url or server.base + path, token=bound)
        status, headers, _ = server.get(path, headers={"Authorization": "DPoP " + bound, "DPoP": proof})
        return status, headers.get("WWW-Authenticate")

    # required: bearer tokens refused with the DPoP challenge alone; a bound token passes.
    status, headers, _ = server.get("/dpop-required", plain)
    assert (status, headers["WWW-Authenticate"]) == (401, f'DPoP realm="api", algs="{ALGS}"' + error(
        "invalid_token", "A DPoP-bound token is required"))
    assert dpop("/dpop-required") == (200, None)
    # off: the DPoP scheme refused, bound tokens refused either way, plain bearer tokens pass.
    assert dpop("/dpop-off") == (401, 'Bearer realm="api"')
    assert server.get("/dpop-off", bound)[0] == 401
    assert server.get("/dpop-off", plain)[0] == 200
    assert server.get("/dpop-off")[1]["WWW-Authenticate"] == 'Bearer realm="api"'
    # A pinned URL: the proof must name it, whatever Host the request carried.
    assert dpop("/dpop-pinned", "https://api.example/dpop-pinned") == (200, None)
    assert dpop("/dpop-pinned") == (401, challenge(dpop=error("invalid_dpop_proof", "DPoP proof is for another URL (htu)")))
    # A short window: a proof 30 s old is too old here, and fresh ones pass.
    assert dpop("/dpop-short")[0] == 200
    old = client.proof(url=server.base + "/dpop-short", token=bound, iat=int(time.time()) - 30)
    status, headers, _ = server.get("/dpop-short", headers={"Authorization": "DPoP " + bound, "DPoP": old})
    assert status == 401 and "too old" in headers["WWW-Authenticate"], headers
    # The default URL is the client's: scheme, Host with its port, the path as sent.
    assert dpop("/vars")[0] == 200
    assert dpop("/vars", "http://localhost/vars")[0] == 401
    # A Host nginx lets through but that is not host[:port] never widens what a proof may name.
    for host, htu in (("api.example?", "http://api.example/"), ("rs2.example#", "http://rs2.example/")):
        request = request_bytes(b"/vars", b"Authorization: DPoP " + bound.encode(),
                                b"DPoP: " + client.proof(url=htu, token=bound).encode())
        status, headers, _ = raw_request(server.port, request.replace(b"Host: api", b"Host: " + host.encode()))
        assert status == 401 and "invalid_dpop_proof" in headers["www-authenticate"][0], (host, status)


def test_one_client_request_checked_again_counts_its_proof_once(server, issuer):
    """An internal redirect to a location with another policy, and an auth_request subrequest
    to one, check the request again: its proof was used once, by this request, and is not a
    replay then; sent again in new requests, it is. Each worker process keeps its own replay
    cache (README, DPoP): of this server's two workers, the other may take it once more."""
    client = DpopClient("ES256")
    bound = client.token_from(issuer.url)
    for path in ("/dpop-redirect", "/dpop-auth-request"):
        proof = client.proof(url=server.base + path, token=bound)
        headers = {"Authorization": "DPoP " + bound, "DPoP": proof}
        status, _, body = server.get(path, headers=headers)
        assert status == 200 and body["message"].startswith("Hello from a private"), (path, body)
        again = [server.get(path, headers=headers) for _ in range(6)]
        assert sum(status == 200 for status, _, _ in again) <= 1, path
        for status, head, _ in again:
            assert status == 200 or (status == 401 and "already used" in head["WWW-Authenticate"]), path
        assert server.get(path, issuer.token("read:messages"))[0] == 200
        # A token without the scope is still refused by the stricter location.
        unscoped = client.token_from(issuer.url, "openid")
        status, head, _ = server.get(path, headers={"Authorization": "DPoP " + unscoped,
                                                    "DPoP": client.proof(url=server.base + path, token=unscoped)})
        assert status == 403, (path, status)
        if path == "/dpop-redirect":  # auth_request passes on the challenge of a 401 only
            assert "insufficient_scope" in head["WWW-Authenticate"], (path, head)


def test_a_proof_accepted_by_one_verifier_is_recorded_by_the_next_one_too(issuer, prefix):
    """A location with its own settings has its own verifier, and its own replay cache: after
    an internal redirect to it, it records the proof in full (never "already accepted"), so a
    later request reaching it directly with the same proof is a replay. One worker."""
    port = free_port()
    config = TEST_CONFIG.format(issuer=issuer.url, audience=AUDIENCE, port=port)
    assert "worker_processes 2;" in config
    config = config.replace("worker_processes 2;", "worker_processes 1;").replace(
        "        location = /dpop-pinned {",
        """        location = /both {
            jwtguard on;
            error_page 418 = @strict;
            if ($arg_strict) { return 418; }
            try_files /nonexistent @strict;
        }
        location @strict {
            jwtguard on;
            jwtguard_dpop required;
            try_files /api/private.json =404;
        }
        location = /dpop-pinned {""", 1)
    assert "location @strict" in config
    nginx = Nginx(prefix, config, port)
    try:
        client = DpopClient("ES256")
        bound = client.token_from(issuer.url)
        proof = client.proof(url=nginx.base + "/both", token=bound)
        headers = {"Authorization": "DPoP " + bound, "DPoP": proof}
        assert nginx.get("/both", headers=headers)[0] == 200
        # The same proof straight to the second verifier (the query is not part of htu).
        status, head, _ = nginx.get("/both?strict=1", headers=headers)
        assert status == 401 and "already used" in head["WWW-Authenticate"], (status, head)
    finally:
        nginx.close()


def test_keys_that_cannot_be_had_answer_503(server, issuer):
    status, headers, _ = server.get("/dead-issuer", issuer.token())
    assert status == 503
    assert "WWW-Authenticate" not in headers


def test_variables(server, issuer):
    status, headers, _ = server.get("/vars", issuer.token("read:messages write:messages"))
    assert status == 200
    assert headers["X-Sub"] == "dev-client@clients"
    assert headers["X-Scope"] == "read:messages write:messages"
    assert headers["X-Missing"] == "[]"
    assert headers["X-Status"] == "ok"
    claims = json.loads(headers["X-Claims"])
    assert claims["aud"] == AUDIENCE and claims["iss"] == issuer.url
    status, headers, _ = server.get("/vars", "not-a-token")
    assert headers["X-Status"] == "token_malformed"


def client_loop(nginx: Nginx, token_source, stop: threading.Event, failures: list, counts: list) -> None:
    while not stop.is_set():
        token = token_source()
        try:
            status = nginx.get("/api/private-scoped", token)[0]
        except OSError as error:
            status = repr(error)
        counts.append(1)
        if status != 200:
            failures.append(status)


def test_rotation_under_load_fails_nothing(prefix):
    issuer = DevIssuer()
    port = free_port()
    # Rotations come every 1.2 s here, so the unknown-kid cooldown is made shorter than that.
    config = example_config(issuer.url, port).replace("http {", "http {\n    jwtguard_refetch_cooldown 1s;", 1)
    nginx = Nginx(prefix, config, port)
    current = {"token": issuer.token("read:messages")}
    stop, failures, counts = threading.Event(), [], []
    clients = [
        threading.Thread(target=client_loop, args=(nginx, lambda: current["token"], stop, failures, counts))
        for _ in range(3)
    ]
    try:
        for c in clients:
            c.start()
        for _ in range(3):
            time.sleep(1.2)
            issuer.rotate()
            current["token"] = issuer.token("read:messages")  # signed by the new key at once
        time.sleep(0.5)
    finally:
        stop.set()
        for c in clients:
            c.join()
        nginx.close()
        issuer.stop()
    assert len(counts) > 100
    assert failures == [], failures[:10]


def test_issuer_down_mid_run_keeps_serving(prefix):
    issuer = DevIssuer()
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port), port)
    try:
        token = issuer.token("read:messages")
        for _ in range(20):
            assert nginx.get("/api/private-scoped", token)[0] == 200
        issuer.stop()
        for _ in range(200):
            assert nginx.get("/api/private-scoped", token)[0] == 200
    finally:
        nginx.close()


def test_reload_under_load_fails_nothing(prefix, issuer):
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port), port)
    token = issuer.token("read:messages")
    stop, failures, counts = threading.Event(), [], []
    clients = [
        threading.Thread(target=client_loop, args=(nginx, lambda: token, stop, failures, counts)) for _ in range(3)
    ]
    try:
        for c in clients:
            c.start()
        before = set(nginx.workers())
        for _ in range(3):
            time.sleep(0.3)
            nginx.reload()
        time.sleep(1.0)
        after = set(nginx.workers())
    finally:
        stop.set()
        for c in clients:
            c.join()
        nginx.close()
    assert before and after and not (before & after), "the workers were replaced"
    assert len(counts) > 100
    assert failures == [], failures[:10]


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total


def wrk(url: str, token: str | None, seconds: int, connections: int = 2) -> tuple[float, int]:
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert non_2xx is None, out
    return rate, total


def test_worker_memory_is_flat_and_wrk_figures(prefix, issuer):
    port = free_port()
    config = example_config(issuer.url, port).replace("worker_processes 2;", "worker_processes 1;")
    nginx = Nginx(prefix, config, port)
    try:
        token = issuer.token("read:messages")
        for _ in range(1000):
            assert nginx.get("/api/private", token)[0] == 200
        baseline = rss_kb(nginx.workers())
        total = 1000
        while total < 100_000:
            total += wrk(nginx.base + "/api/private", token, 3)[1]
        grown = rss_kb(nginx.workers()) - baseline
        assert grown < 5 * 1024, f"worker RSS grew by {grown} kB over {total} requests"

        private, _ = wrk(nginx.base + "/api/private", token, 10)
        public, _ = wrk(nginx.base + "/api/public", None, 10)
        figures = (
            f"wrk 10 s, 2 connections, 1 worker: /api/private (RS256 verified) {private:,.0f} req/s, "
            f"/api/public {public:,.0f} req/s, ratio {private / public:.2f}; "
            f"worker RSS {baseline} kB after 1,000 requests, {grown:+d} kB after {total:,}"
        )
        print("\n" + figures)
        (ROOT / "target" / "nginx-figures.txt").write_text(figures + "\n")
    finally:
        nginx.close()
