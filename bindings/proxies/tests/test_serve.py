"""`jwtguard serve` checked directly over HTTP: every status, every route rule, the tokens of
both issuers, a token of one issuer claiming the other's `iss`, an unknown `iss` causing no
fetch, where the original path and method come from, hostile paths and claims, the admin
listener, config errors, graceful shutdown and a key rotation under load."""

from __future__ import annotations

from http.client import HTTPConnection
import json
import signal
import threading
import time

import pytest

from conftest import MINTED_ISSUER, DevIssuer, Serve, http, serve_config
from dpop import NO_TOKEN_CHALLENGE, DpopClient
from harness import raw_request, request_bytes

CLAIM_HEADERS = ("x-jwt-sub", "x-jwt-iss", "x-jwt-scope", "x-jwt-client-id")


def challenge(head) -> str | None:
    return head.get("WWW-Authenticate")


def test_each_issuers_tokens_pass_with_their_claims(serve, issuer, minter):
    status, head, body = serve.check("/api/private", issuer.token("read:messages"))
    assert (status, body) == (200, "")
    assert head["X-Jwt-Iss"] == issuer.url
    assert head["X-Jwt-Sub"] and head["X-Jwt-Scope"] == "read:messages"
    assert head["X-Jwt-Client-Id"]
    status, head, _ = serve.check("/api/private-scoped", minter.token("ES256"))
    assert status == 200 and head["X-Jwt-Iss"] == MINTED_ISSUER
    assert head["X-Jwt-Sub"] == "client-1@clients" and head["X-Jwt-Client-Id"] == "client-1"
    # A claim the token lacks is answered empty (so a proxy copying it overwrites a spoof).
    status, head, _ = serve.check("/api/private", minter.token("RS256", client_id=None))
    assert status == 200 and head["X-Jwt-Client-Id"] == ""


def test_every_route_rule_and_status(serve, issuer):
    token, plain = issuer.token("read:messages"), issuer.token("openid")
    expired = issuer.token("read:messages", expires_in=-120)
    cases = [
        ("/api/public", None, 200, None),
        ("/api/public/deeper", None, 200, None),
        ("/api/private", None, 401, NO_TOKEN_CHALLENGE),
        ("/api/private", "not-a-jwt", 401, "invalid_token"),
        ("/api/private", expired, 401, "invalid_token"),
        ("/api/private", plain, 200, None),
        ("/api/private-scoped", plain, 403, 'error="insufficient_scope"'),
        ("/api/private-scoped", token, 200, None),
        ("/anything/else", None, 401, NO_TOKEN_CHALLENGE),
        ("/anything/else", plain, 200, None),
    ]
    for path, bearer, want, says in cases:
        status, head, body = serve.check(path, bearer)
        assert status == want, (path, status, body)
        if says:
            assert says in challenge(head), (path, challenge(head))
            assert head["Content-Type"] == "application/json"
            assert set(body) == {"code", "description"}
    # The public route answers every claim header, empty.
    status, head, _ = serve.check("/api/public", token)
    assert status == 200 and all(head[h] == "" for h in CLAIM_HEADERS)
    status, head, body = serve.check("/api/private-scoped", plain)
    assert 'scope="read:messages"' in challenge(head)
    assert body == {"code": "Unauthorized", "description": "You don't have access to this resource"}
    # Another scheme: 401, the seed's invalid_header, a challenge without an error (RFC 6750
    # 3.1; review 3, item 9). A malformed Bearer header: 400, as on every host.
    for other in ("Basic dXNlcjpwYXNz", "Token x", "Digest a=b"):
        status, head, body = serve.check("/api/private", headers={"Authorization": other})
        assert (status, body["code"]) == (401, "invalid_header"), (other, body)
        assert challenge(head) == NO_TOKEN_CHALLENGE, (other, head)
    status, head, body = serve.check("/api/private", headers={"Authorization": "Bearer a b"})
    assert status == 400 and 'error="invalid_request"' in challenge(head)


def test_one_issuers_key_never_verifies_the_others_tokens(serve, issuer, minter):
    # The minter (issuer B) signing a token that claims the dev issuer (A): refused.
    for alg in ("RS256", "ES256"):
        status, head, _ = serve.check("/api/private", minter.token(alg, iss=issuer.url))
        assert status == 401 and "invalid_token" in challenge(head), alg
    # B's token with B's iss but A's... audience checks stay per issuer.
    status, _, _ = serve.check("/api/private", minter.token("ES256", aud="https://other.example"))
    assert status == 401


def test_an_unknown_iss_is_refused_without_any_fetch(serve, issuer, minter):
    serve.check("/api/private", issuer.token())  # keys loaded
    before_a = issuer.jwks_requests()
    before = {k: v for k, v in serve.metrics().items() if k.startswith("jwtguard_jwks_fetches_total")}
    for iss in ("https://evil.example/", issuer.url.rstrip("/"), issuer.url + "x", None):
        status, head, _ = serve.check("/api/private", minter.token("ES256", iss=iss))
        assert status == 401 and "invalid_token" in challenge(head)
    assert issuer.jwks_requests() == before_a
    after = {k: v for k, v in serve.metrics().items() if k.startswith("jwtguard_jwks_fetches_total")}
    assert after == before
    assert serve.metrics()['jwtguard_decisions_total{status="401",reason="issuer_invalid"}'] >= 4


def test_the_original_path_and_method_come_from_the_proxys_headers(serve, issuer):
    plain = issuer.token("openid")
    # nginx's X-Original-URI first, then X-Forwarded-Uri, then the request's own path.
    assert serve.check("/x", plain, headers={"X-Original-URI": "/api/private-scoped"})[0] == 403
    assert serve.check("/x", plain, headers={"X-Forwarded-Uri": "/api/private-scoped"})[0] == 403
    assert serve.check("/api/private-scoped", plain)[0] == 403
    assert serve.check("/api/private-scoped", None, headers={"X-Original-URI": "/api/public"})[0] == 200
    both = {"X-Original-URI": "/api/public", "X-Forwarded-Uri": "/api/private"}
    assert serve.check("/x", None, headers=both)[0] == 200
    # Every method is a check.
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        assert serve.check("/api/private", None, method=method)[0] == 401, method
        assert serve.check("/api/private", plain, method=method)[0] == 200, method
    assert serve.check("/api/private", plain, headers={"X-Original-Method": "DELETE"})[0] == 200
    assert serve.check("/api/private", plain, headers={"X-Forwarded-Method": "PO ST"})[0] == 400


@pytest.mark.parametrize("path", [
    "/api/public/../private",
    "/api/public/%2e%2e/private",
    "/api/public/./../private-scoped",
    "/api/public/..//private",
    "http://evil.example/api/public/../private",
])
def test_a_path_that_only_looks_public_is_judged_where_it_leads(serve, path):
    status, head, _ = serve.check("/x", None, headers={"X-Original-URI": path})
    assert status == 401 and challenge(head) == NO_TOKEN_CHALLENGE, path


@pytest.mark.parametrize("path", [
    "/api/public%2F..%2Fprivate",
    "/app/x%2F..%2F..%2Fapi%2Fpublic",
    "/api/public%5C..%5Cprivate",
    "/api/public\\..\\private",
    "/api/public/%252e%252e/private",
    "/api/public/..;/private",
])
def test_a_path_proxies_and_upstreams_read_differently_is_400(serve, issuer, path):
    status, _, body = serve.check("/x", issuer.token(), headers={"X-Original-URI": path})
    assert status == 400 and body["code"] == "bad_request", (path, body)


def test_routes_cover_whole_segments_and_case_never_loosens_a_rule(serve, issuer):
    plain = issuer.token("openid")
    # /api/public covers /api/public/x, not a sibling that merely starts alike.
    for path in ("/api/publicity", "/api/public-admin", "/api/public.bak"):
        assert serve.check("/x", None, headers={"X-Original-URI": path})[0] == 401, path
    # A proxy matching without case (Caddy) reaches the scoped route: the scope still applies,
    # and an upper-case public path is not public.
    assert serve.check("/x", plain, headers={"X-Original-URI": "/API/PRIVATE-SCOPED"})[0] == 403
    assert serve.check("/x", issuer.token(), headers={"X-Original-URI": "/Api/Private-Scoped"})[0] == 200
    assert serve.check("/x", None, headers={"X-Original-URI": "/API/PUBLIC"})[0] == 401


def test_a_refusal_page_request_is_never_allowed(serve, issuer):
    token = issuer.token()
    assert serve.check("/api/private", token)[0] == 200
    status, head, body = serve.check("/api/private", token, headers={"X-Jwtguard-Refusal": "500"})
    assert status == 503 and head["Retry-After"] == "5", body
    status, _, body = serve.check("/api/private", token, headers={"X-Jwtguard-Refusal": "400"})
    assert status == 400 and body["code"] == "invalid_header"
    # A request the proxy refused as malformed stays a 400 whatever this check would say of
    # what was passed on (another scheme: 401; none: 401).
    for authorization in ("Basic dXNlcjpwYXNz", None):
        status, _, body = serve.check("/api/private", None, headers={
            "X-Jwtguard-Refusal": "400", **({"Authorization": authorization} if authorization else {})})
        assert status == 400 and body["code"] == "invalid_header", (authorization, status, body)
    # A real refusal is answered as it is.
    assert serve.check("/api/private", None, headers={"X-Jwtguard-Refusal": "401"})[0] == 401


def test_dpop_proofs_are_checked_against_the_forwarded_url(serve, issuer):
    client = DpopClient("ES256")
    token = client.token_from(issuer.url)
    dpop = "DPoP " + token
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example", "X-Original-URI": "/api/private?x=1"}

    def check(proof, headers=forwarded, authorization=dpop):
        status, head, body = serve.check("/x", None, headers={**headers, "Authorization": authorization, "DPoP": proof})
        return status, body.get("description") if isinstance(body, dict) else body

    proof = client.proof(url="https://api.example/api/private", token=token)
    assert check(proof)[0] == 200
    assert check(proof) == (401, "DPoP proof was already used (jti)")
    # The refusal page of that replay describes it as the first check did; a refusal page is
    # never allowed, and it does not count the proof's jti (the 403 of a scope it lacks stays
    # a 403 on the page: tests/support/harness.py "DPoP scope missing" behind nginx).
    status, _, body = serve.check("/x", None, headers={**forwarded, "Authorization": dpop, "DPoP": proof,
                                                       "X-Jwtguard-Refusal": "000"})
    assert (status, body["code"]) == (401, "invalid_dpop_proof"), body
    for url in ("http://api.example/api/private", "https://other.example/api/private",
                "https://api.example/api/public", "https://api.example:8443/api/private"):
        assert check(client.proof(url=url, token=token)) == (401, "DPoP proof is for another URL (htu)"), url
    # A forwarded host or scheme that is not one never makes a proof for another URL good.
    for host, proto, htu in (("rs2.example/other/path?", "https", "https://rs2.example/other/path"),
                             ("api.example#", "https", "https://api.example/"),
                             ("api.example", "ftp", "ftp://api.example/api/private")):
        headers = {**forwarded, "X-Forwarded-Host": host, "X-Forwarded-Proto": proto}
        assert check(client.proof(url=htu, token=token), headers) == (401, "DPoP proof is for another URL (htu)"), host
    # Without X-Forwarded-*: http and the check request's own Host.
    own = {"X-Original-URI": "/api/private"}
    assert check(client.proof(url=f"{serve.base}/api/private", token=token), own)[0] == 200
    # The method is the original request's.
    assert check(client.proof(method="POST", url="https://api.example/api/private", token=token),
                 {**forwarded, "X-Original-Method": "POST"})[0] == 200
    assert check(client.proof(method="POST", url="https://api.example/api/private", token=token))[1] == (
        "DPoP proof is for another HTTP method (htm)")
    # Two DPoP lines on the check request.
    two = request_bytes(b"/x", b"X-Original-URI: /api/private", b"Authorization: " + dpop.encode(),
                        *(b"DPoP: " + client.proof(url="http://api/api/private", token=token).encode() for _ in "ab"))
    status, _, body = raw_request(serve.port, two)
    assert (status, json.loads(body)["code"]) == (401, "invalid_dpop_proof"), body
    assert json.loads(body)["description"] == "Only one DPoP proof is allowed"
    # The bound token as a bearer token.
    status, head, body = serve.check("/x", token, headers=forwarded)
    assert (status, body["description"]) == (401, "Token is bound to a key and needs a DPoP proof")
    assert head["WWW-Authenticate"].startswith('Bearer realm="api", error="invalid_token"')


def test_dpop_required_and_off(issuer, minter):
    client = DpopClient("ES256")
    bound, plain = client.token_from(issuer.url), issuer.token()
    # Under dpop off, the DPoP scheme is one this host does not support: 401 without an error
    # (review 3, item 9).
    for mode, bearer, with_proof in (("required", 401, 200), ("off", 200, 401)):
        s = Serve(serve_config(issuer.url, minter.jwks_uri).replace('realm = "api"', f'realm = "api"\ndpop = "{mode}"'))
        try:
            assert s.check("/api/private", plain)[0] == bearer, mode
            status, head, _ = s.check("/api/private", None, headers={
                "Authorization": "DPoP " + bound, "DPoP": client.proof(url=f"{s.base}/api/private", token=bound)})
            assert status == with_proof, mode
            assert mode != "off" or "error=" not in head["WWW-Authenticate"], head
            status, head, _ = s.check("/api/private")
            assert ("DPoP realm" in head["WWW-Authenticate"]) == (mode == "required"), head
            assert head["WWW-Authenticate"].startswith("Bearer") == (mode == "off"), head
        finally:
            assert s.stop() == 0


def test_paths_that_look_like_something_else_are_normalised_both_ways(serve, issuer):
    plain = issuer.token("openid")
    for path in ("/api/%70ublic", "/api//public", "//api/public?x=../private", "/api/public#../private"):
        assert serve.check("/x", None, headers={"X-Original-URI": path})[0] == 200, path
    for path in ("/api/private-%73coped", "/api/./private-scoped", "/api/private-scoped?public"):
        assert serve.check("/x", plain, headers={"X-Original-URI": path})[0] == 403, path


def test_unusable_check_requests_are_400_never_a_verdict(serve, issuer):
    token = issuer.token()
    for uri in ("/api/%zz", "/api/%0", "/api/%00", "/../etc/passwd", "api/private", "*"):
        status, _, body = serve.check("/x", token, headers={"X-Original-URI": uri})
        assert status == 400 and body["code"] == "bad_request", uri
    two = request_bytes(b"/x", b"X-Original-URI: /api/public", b"X-Original-URI: /api/private")
    status, _, body = raw_request(serve.port, two)
    assert status == 400 and b"more than once" in body
    # A head over 32 KiB: 431, and the service goes on.
    status, _, _ = serve.check("/api/private", token, headers={"X-Big": "a" * 40_000})
    assert status == 431
    assert serve.check("/api/private", token)[0] == 200


def test_hostile_claim_values_never_break_a_header(serve, minter):
    token = minter.token("ES256", sub="x\r\nSet-Cookie: pwned=1\u0000\\", client_id={"nested": ["a\nb"]})
    status, head, _ = raw_request(serve.port, request_bytes(b"/api/private", b"Authorization: Bearer " + token.encode()))
    assert status == 200
    assert "set-cookie" not in head
    assert head["x-jwt-sub"] == ["x\\r\\nSet-Cookie: pwned=1\\u0000\\\\"]
    assert "\n" not in head["x-jwt-client-id"][0]
    # Leading and trailing spaces survive as \u0020 (HTTP trims a field value: "admin " would
    # reach the upstream as "admin"; review 3, item 15).
    token = minter.token("ES256", sub="admin ", client_id=" lead")
    status, head, _ = raw_request(serve.port, request_bytes(b"/api/private", b"Authorization: Bearer " + token.encode()))
    assert status == 200
    assert (head["x-jwt-sub"], head["x-jwt-client-id"]) == (["admin\\u0020"], ["\\u0020lead"]), head
    huge = minter.token("ES256", sub="s" * 12_000)
    status, head, _ = raw_request(serve.port, request_bytes(b"/api/private", b"Authorization: Bearer " + huge.encode()))
    assert status == 200 and len(head["x-jwt-sub"][0]) == 12_000


def test_metrics_and_probes(serve, issuer):
    assert serve.admin_get("/healthz")[0] == 200
    assert serve.admin_get("/readyz")[0] == 200
    assert serve.admin_get("/nope")[0] == 404
    token = issuer.token()
    for _ in range(5):
        assert serve.check("/api/private", token)[0] == 200
    m = serve.metrics()
    assert m['jwtguard_decisions_total{status="200",reason="ok"}'] >= 5
    assert m["jwtguard_token_cache_hits_total"] >= 4
    assert m["jwtguard_keys_ready"] == 1
    buckets = [v for k, v in m.items() if k.startswith("jwtguard_check_duration_seconds_bucket")]
    assert buckets == sorted(buckets) and buckets[0] < buckets[-1], buckets
    assert 0 < m["jwtguard_check_duration_seconds_sum"] < m["jwtguard_check_duration_seconds_count"]
    assert m["jwtguard_check_duration_seconds_count"] >= 5
    ok = [v for k, v in m.items() if k.startswith("jwtguard_jwks_fetches_total") and 'result="ok"' in k]
    assert len(ok) == 2 and all(v >= 1 for v in ok), m
    # The check listener does not answer admin paths as admin: they are checks like any other.
    assert serve.check("/metrics")[0] == 401


def test_readiness_waits_for_every_issuers_keys(minter):
    slow = DevIssuer()
    try:
        slow.fault(mode="status", status=500)
        s = Serve(serve_config(slow.url, minter.jwks_uri))
        try:
            time.sleep(0.5)
            assert s.admin_get("/readyz")[0] == 503
            assert s.metrics()["jwtguard_keys_ready"] == 0
            # Meanwhile a check of the failing issuer's token is refused 503, never let in.
            status, head, _ = s.check("/api/private", slow.token())
            assert status == 503 and head["Retry-After"] == "5"
            slow.fault(mode="off")
            s.wait_ready(seconds=30)
            assert s.check("/api/private", slow.token())[0] == 200
        finally:
            assert s.stop() == 0
    finally:
        slow.stop()


@pytest.mark.parametrize("text, line, message", [
    ("[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\nalgorithms = [\"HS256\"]\n", 1, "HS256"),
    ("listen = \"127.0.0.1:1\"\n", None, "[[issuer]]"),
    ("\n\n[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\nsurprise = 1\n", 6, "unknown field"),
    ("[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\n[[route]]\nprefix = \"x\"\n", 4, "must start with /"),
    ("dpop = \"on\"\n[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\n", 1, "dpop must be"),
    ("dpop_window = 0\n[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\n", 1, "window"),
    ("\ndpop_replay_cache = 0\n[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\n", 2, "replay cache"),
    ("\n\ndpop_origins = [\"https://api.example/v1\"]\n[[issuer]]\nissuer = \"https://i/\"\naudience = \"a\"\n", 3,
     "dpop_origins: \"https://api.example/v1\" is not an origin"),
])
def test_config_errors_name_the_file_and_line(text, line, message):
    s = Serve(text, expect_start=False)
    assert s.process.wait(timeout=10) == 2
    error = s.stderr()
    assert message in error, error
    if line is not None:
        assert f"serve.toml:{line}: " in error, error
    s.stop()


def test_listen_on_the_command_line_overrides_the_file(issuer, minter):
    s = Serve(serve_config(issuer.url, minter.jwks_uri), "--listen", "127.0.0.1:0")
    try:
        assert s.check("/api/public")[0] == 200
    finally:
        assert s.stop() == 0


def test_sigterm_lets_in_flight_checks_finish(minter):
    slow = DevIssuer()
    try:
        # Cold keys behind a 2 s delay: the check waits for them.
        slow.fault(mode="delay", ms=2000)
        s = Serve(serve_config(slow.url, minter.jwks_uri))
        token = slow.token()
        answers = []
        worker = threading.Thread(target=lambda: answers.append(s.check("/api/private", token)[0]))
        worker.start()
        time.sleep(0.5)
        s.process.send_signal(signal.SIGTERM)
        worker.join(timeout=15)
        assert answers == [200]
        assert s.process.wait(timeout=15) == 0
        assert "stopping" in s.stderr()
        s.stop()
    finally:
        slow.stop()


def test_four_clients_through_key_rotations_see_no_valid_token_refused(serve, issuer):
    tokens = [issuer.token("read:messages")]
    lock = threading.Lock()
    stop = threading.Event()
    results = {"ok": 0, "refused": []}

    def client():
        try:
            loop()
        except Exception as e:  # a broken connection fails the test too
            with lock:
                results["refused"].append(repr(e))

    def loop():
        conn = HTTPConnection("127.0.0.1", serve.port, timeout=10)
        while not stop.is_set():
            with lock:
                token = tokens[-1] if results["ok"] % 2 else tokens[max(0, len(tokens) - 2)]
            conn.request("GET", "/api/private-scoped", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = response.read()
            with lock:
                if response.status == 200:
                    results["ok"] += 1
                else:
                    results["refused"].append((response.status, body))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # A rotation every 1.5 s: a new kid is fetched for at most once a second per JWKS
        # URL (the flood limit), and a real issuer rotates far less often.
        for _ in range(3):
            time.sleep(1.5)
            # The new key signs from now on; the two before stay published (keep 2): the
            # clients are still sending tokens of both.
            body = json.dumps({"keep": 2}).encode()
            assert http("POST", issuer.url + "admin/rotate", body, {"Content-Type": "application/json"})[0] == 200
            fresh = issuer.token("read:messages")
            with lock:
                tokens.append(fresh)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert results["refused"] == []
    assert results["ok"] > 100


def test_pinned_dpop_origins_refuse_a_proof_for_a_spoofed_host(issuer, minter):
    """Review 3, item 17: the proof URL is built from X-Forwarded-Proto/-Host (else Host), which
    a client may have chosen. With dpop_origins, a proof is good only for a URL on one of them;
    the pinned origin passes, a spoofed host is refused (610), as it is not without them."""
    client = DpopClient("ES256")
    token = client.token_from(issuer.url)
    mismatch = (401, "DPoP proof is for another URL (htu)")
    config = serve_config(issuer.url, minter.jwks_uri).replace(
        'realm = "api"', 'realm = "api"\ndpop_origins = ["https://api.example", "http://api"]')
    pinned, open_ = Serve(config), Serve(serve_config(issuer.url, minter.jwks_uri))
    try:
        def check(s, url, **headers):
            status, _, body = s.check("/x", None, headers={
                "X-Original-URI": "/api/private", "Authorization": "DPoP " + token,
                "DPoP": client.proof(url=url, token=token), **headers})
            return (status, body["description"]) if status != 200 else (200, None)

        https = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"}
        assert check(pinned, "https://api.example/api/private", **https) == (200, None)
        assert check(pinned, "http://api/api/private", Host="api") == (200, None)
        for s, want in ((pinned, mismatch), (open_, (200, None))):
            assert check(s, "https://evil.example/api/private", **{**https, "X-Forwarded-Host": "evil.example"}) == want
            assert check(s, "http://evil.example/api/private", Host="evil.example") == want
            assert check(s, "http://api.example/api/private", **{**https, "X-Forwarded-Proto": "http"}) == want
    finally:
        assert pinned.stop() == 0 and open_.stop() == 0


@pytest.mark.parametrize("line", [
    b"Bearer TOKEN\x7f", b"Bearer TOKEN\x01", b"Bearer TOKEN\x00", b"Bearer TOK\rEN", b"Bearer TOKEN\r", b"Bearer\x01 TOKEN",
])
def test_a_control_byte_in_authorization_gets_the_projects_400_not_hypers(serve, issuer, line):
    """Review 3, item 16: hyper refused such a request itself (a bare 400: no JSON, no
    challenge); the service answers it as every host does."""
    line = line.replace(b"TOKEN", issuer.token().encode())
    status, head, body = raw_request(serve.port, request_bytes(b"/api/private", b"Authorization: " + line))
    assert (status, json.loads(body)["code"]) == (400, "invalid_header"), body
    assert head["content-type"] == ["application/json"]
    assert head["www-authenticate"][0].startswith('Bearer realm="api", error="invalid_request"'), head
    # The connection's other requests are read as they came.
    assert serve.check("/api/private", issuer.token())[0] == 200


def test_two_authorization_lines_are_malformed_even_when_one_is_empty(serve, issuer):
    good = b"Authorization: Bearer " + issuer.token().encode()
    for lines in ((good, b"Authorization: "), (b"Authorization:", good), (good, good)):
        status, head, body = raw_request(serve.port, request_bytes(b"/api/private", *lines))
        assert (status, json.loads(body)["code"]) == (400, "invalid_header"), (lines, body)
        assert 'error="invalid_request"' in head["www-authenticate"][0]
