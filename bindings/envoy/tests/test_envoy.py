"""jwtguard in the real Envoy 1.40: the example's answers, forwarded claims, per-route scopes,
algorithms, key rotation under load, issuer outages, bad configs and shutdown."""

from __future__ import annotations

import json
import re
import sys
import threading
import time

from conftest import (
    AUDIENCE, ROOT, DevIssuer, DiscoveryMinter, Envoy, bootstrap, direct, example_config, free_port, h2c_request, self_signed,
    tls_raw_request, upstream_cluster, with_tls,
)

sys.path.insert(0, str(ROOT / "tests" / "support"))
from harness import (  # noqa: E402
    MINTED_ISSUER, PingServers, RecordingUpstream, assert_hosts_agree, host_cases, raw_request as raw,
    request_bytes,
)
from minter import Minter  # noqa: E402
from dpop import NO_TOKEN_CHALLENGE, DpopClient, error  # noqa: E402
from dpop import challenge as dpop_challenge  # noqa: E402

PUBLIC = "{\"message\":\"Hello from a public endpoint! You don't need to be authenticated to see this.\"}\n"
PRIVATE = "{\"message\":\"Hello from a private endpoint! You need to be authenticated to see this.\"}\n"
SCOPED = ("{\"message\":\"Hello from a private endpoint! You need to be authenticated and have a scope of "
          "read:messages to see this.\"}\n")
MALFORMED = "Authorization header must be 'Bearer <token>'"
# Schemes other than Bearer and DPoP (review 3, item 9): 401, the seed's invalid_header, and a
# challenge without an error.
UNSUPPORTED_SCHEMES = {
    f"scheme {scheme.decode()}": (request_bytes(b"/api/private", b"Authorization: " + scheme), 401)
    for scheme in (b"Basic x", b"Token x", b"Digest a=b")
}


def test_the_example_answers_what_every_host_answers(issuer, ports):
    port, admin = ports
    envoy = Envoy(example_config(issuer.url, port, admin), port, admin)
    try:
        status, headers, body = raw(port, b"GET /api/public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (status, body.decode()) == (200, PUBLIC)
        assert headers["content-type"] == ["application/json"]
        scoped, plain = issuer.token("read:messages"), issuer.token("openid")
        cases = [
            ("/api/private", None, 401, "authorization_header_missing", NO_TOKEN_CHALLENGE),
            ("/api/private", plain, 200, None, None),
            ("/api/private-scoped", plain, 403, "Unauthorized",
             dpop_challenge(bearer=error("insufficient_scope", "You don't have access to this resource")
                            + ', scope="read:messages"')),
            ("/api/private-scoped", scoped, 200, None, None),
            ("/api/private", issuer.token(expires_in=-300), 401, "token_expired", None),
            ("/api/private", plain[:-4] + "AAAA", 401, "invalid_token", None),
            ("/api/private", "not-a-jwt", 401, "invalid_header", None),
        ]
        for path, token, want, code, challenge in cases:
            auth = b"" if token is None else b"Authorization: Bearer " + token.encode() + b"\r\n"
            status, headers, body = raw(port, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + auth
                                        + b"Connection: close\r\n\r\n")
            assert status == want, (path, body)
            assert headers["content-type"] == ["application/json"], (path, headers)
            if code is None:
                assert body.decode() == (SCOPED if path.endswith("scoped") else PRIVATE)
                continue
            answer = json.loads(body)
            assert answer["code"] == code and body.endswith(b"}\n"), body
            assert len(headers["www-authenticate"]) == 1
            if challenge:
                assert headers["www-authenticate"][0] == challenge
            else:
                assert headers["www-authenticate"][0].startswith('Bearer realm="api", error="invalid_token"')
        # Malformed requests: two Authorization lines, control and non-ASCII bytes.
        token = scoped.encode()
        for auth in (b"Authorization: Bearer " + token + b"\r\nAuthorization: Bearer " + token,
                     b"Authorization: Bearer " + token + b"\xff"):
            status, headers, body = raw(port, b"GET /api/private HTTP/1.1\r\nHost: x\r\n" + auth
                                        + b"\r\nConnection: close\r\n\r\n")
            assert (status, json.loads(body)["description"]) == (400, MALFORMED), auth
            assert 'error="invalid_request"' in headers["www-authenticate"][0]
        # Another scheme is no malformed Bearer header: 401 (RFC 6750 3.1), the seed's
        # invalid_header, a challenge without an error (review 3, item 9).
        for name, (request, want) in UNSUPPORTED_SCHEMES.items():
            status, headers, body = raw(port, request)
            assert (status, json.loads(body)["code"]) == (want, "invalid_header"), (name, body)
            assert headers["www-authenticate"] == [NO_TOKEN_CHALLENGE], (name, headers)
        assert envoy.get("/nope")[0] == 404
        stats = envoy.stats()
        assert stats["dynamicmodulescustom.jwtguard_allowed"] >= 2
        assert stats["dynamicmodulescustom.jwtguard_denied.reason.insufficient_scope"] >= 1
    finally:
        assert envoy.stop() == 0


def test_envoy_answers_every_request_like_flask_and_the_c_server(issuer, ports):
    servers = PingServers(issuer.url)
    port, admin = ports
    # The host cases send `Host: api` to every host on whatever port it listens on: pinned as
    # the public origin (port 80 mapped to Envoy's), the proofs for http://api/... pass.
    pin = '# dpop_origins: ["https://api.example"]'
    config = example_config(issuer.url, port, admin)
    assert pin in config
    envoy = Envoy(config.replace(pin, 'dpop_origins: ["http://api"]'), port, admin)
    try:
        client = DpopClient("ES256")
        bound = (client, client.token_from(issuer.url).encode(), client.token_from(issuer.url, "openid").encode())
        cases = host_cases(issuer.token("read:messages").encode(), issuer.token("openid").encode(), bound)
        assert_hosts_agree({**servers.ports, "Envoy": port}, {**cases, **UNSUPPORTED_SCHEMES})
    finally:
        servers.close()
        assert envoy.stop() == 0


def test_claims_are_forwarded_and_spoofed_headers_replaced(ports):
    minter, upstream = Minter(), RecordingUpstream()
    port, admin = ports
    config = bootstrap(
        port, admin,
        {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri,
         "forward_claims": {"sub": "X-Jwt-Sub", "scope": "x-jwt-scope", "tenantId": "x-tenant",
                            "client_id": "x-client-id"}},
        [
            # A route chosen by a forwarded claim: only the verified value may select it.
            # (It requires the admin scope, checked once the route is chosen by the claim.)
            {"match": {"prefix": "/", "headers": [{"name": "x-jwt-sub", "string_match": {"exact": "admin"}}]},
             "direct_response": {"status": 200, "body": {"inline_string": "admin route"}},
             "typed_per_filter_config": {"jwtguard": {
                 "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
                 "dynamic_module_config": {"name": "jwtguard_envoy"},
                 "filter_name": "jwtguard",
                 "filter_config": {"@type": "type.googleapis.com/google.protobuf.Struct",
                                   "value": {"require_scope": ["admin"]}}}}},
            {"match": {"prefix": "/"}, "route": {"cluster": "upstream"}},
        ],
        [upstream_cluster("upstream", upstream.port)],
    )
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        token = minter.token(sub="alice", tenantId="t-7")
        spoof = {"X-Jwt-Sub": "admin", "X-Tenant": "other", "X-Jwt-Scope": "admin"}
        status, _, body = envoy.get("/x", token, spoof)
        assert (status, body) == (200, {"upstream": "/x"})
        seen = upstream.seen[-1]
        assert (seen["x-jwt-sub"], seen["x-tenant"], seen["x-jwt-scope"]) == ("alice", "t-7", "read:messages")
        # The spoofed X-Jwt-Sub: admin did not pick the admin route; a token for admin does.
        assert envoy.get("/x", minter.token(sub="admin", scope="admin"))[2] == "admin route"
        status, headers, body = envoy.get("/x", minter.token(sub="admin"))
        assert (status, body["code"]) == (403, "Unauthorized") and 'scope="admin"' in headers["WWW-Authenticate"]
        # A claim that is absent: the spoofed header is removed all the same.
        envoy.get("/x", minter.token(sub="bob"), spoof)
        assert upstream.seen[-1]["x-jwt-sub"] == "bob" and "x-tenant" not in upstream.seen[-1]
        # A hostile claim cannot add a header upstream.
        envoy.get("/x", minter.token(sub="x\r\nX-Admin: 1"))
        assert upstream.seen[-1]["x-jwt-sub"] == "x\\r\\nX-Admin: 1" and "x-admin" not in upstream.seen[-1]
        # Leading and trailing spaces survive as \u0020 (HTTP trims a field value: "admin "
        # would reach the upstream as "admin"; review 3, item 15).
        assert envoy.get("/x", minter.token(sub="admin ", client_id=" lead"))[0] == 200
        seen = upstream.seen[-1]
        assert (seen["x-jwt-sub"], seen["x-client-id"]) == ("admin\\u0020", "\\u0020lead"), seen
        # Refused requests never reach the upstream.
        before = len(upstream.seen)
        assert envoy.get("/x", "garbage", spoof)[0] == 401
        assert len(upstream.seen) == before
    finally:
        assert envoy.stop() == 0
        upstream.close()
        minter.close()


def test_algorithms_per_route_scopes_and_token_sources(ports):
    minter = Minter()
    port, admin = ports
    scoped_route = {"jwtguard": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilterPerRoute",
        "dynamic_module_config": {"name": "jwtguard_envoy"},
        "filter_name": "jwtguard",
        "filter_config": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"require_scope": ["admin"]}},
    }}
    config = bootstrap(
        port, admin,
        {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri,
         "algorithms": ["RS256", "PS256", "ES256", "EdDSA"], "require_scope": ["read:messages"]},
        [direct("/any"), direct("/admin", typed_per_filter_config=scoped_route)],
    )
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        for alg in ("RS256", "PS256", "ES256", "EdDSA"):
            assert envoy.get("/any", minter.token(alg=alg))[0] == 200, alg
        # The route's require_scope replaces the listener's.
        assert envoy.get("/admin", minter.token())[0] == 403
        assert envoy.get("/admin", minter.token(scope="admin"))[0] == 200
        assert envoy.get("/any", minter.token(scope="admin"))[0] == 403
    finally:
        assert envoy.stop() == 0
    # DPoP required, EdDSA proofs only, a 5 s window.
    port, admin = free_port(), free_port()
    config = bootstrap(port, admin, {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri,
                                     "dpop": "required", "dpop_algorithms": ["EdDSA"], "dpop_window": 20,
                                     "leeway": 0}, [direct("/any")])
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        status, head, body = envoy.get("/any", minter.token())
        assert (status, body["description"]) == (401, "A DPoP-bound token is required")
        assert head["WWW-Authenticate"].startswith('DPoP realm="api", algs="EdDSA Ed25519", error="invalid_token"'), head
        url = f"{envoy.base}/any"
        for alg, iat_ago, want in (("EdDSA", 0, 200), ("ES256", 0, "DPoP proof algorithm is not allowed"),
                                   ("EdDSA", 60, "DPoP proof is too old (iat)")):
            client = DpopClient(alg)
            bound = minter.token(cnf={"jkt": client.jkt()})
            proof = client.proof(url=url, token=bound, iat=int(time.time()) - iat_ago)
            status, _, body = envoy.get("/any", headers={"Authorization": "DPoP " + bound, "DPoP": proof})
            assert (status if want == 200 else body["description"]) == want, (alg, body)
    finally:
        assert envoy.stop() == 0
    # The token from a cookie instead of Authorization.
    port, admin = free_port(), free_port()
    config = bootstrap(port, admin, {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri,
                                     "token_cookie": "access_token"}, [direct("/any")])
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        assert envoy.get("/any", headers={"Cookie": f"a=1; access_token={minter.token()}"})[0] == 200
        assert envoy.get("/any", minter.token())[0] == 401
    finally:
        assert envoy.stop() == 0
        minter.close()


def test_several_issuers_each_verified_against_its_own_keys(issuer, ports):
    minter = Minter()
    port, admin = ports
    config = bootstrap(
        port, admin,
        {"issuers": [
            {"issuer": issuer.url, "audience": AUDIENCE},
            {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri, "algorithms": ["ES256"]},
        ], "forward_claims": {"iss": "x-iss"}},
        [direct("/any")],
    )
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        assert envoy.get("/any", issuer.token())[0] == 200
        assert envoy.get("/any", minter.token(alg="ES256"))[0] == 200
        # One issuer's key never verifies a token claiming the other.
        status, head, _ = envoy.get("/any", minter.token(alg="ES256", iss=issuer.url))
        assert status == 401 and 'error="invalid_token"' in head["WWW-Authenticate"]
        # Each issuer's own algorithms.
        assert envoy.get("/any", minter.token(alg="RS256"))[0] == 401
        # An iss no issuer owns: refused, no fetch.
        before = issuer.jwks_requests()
        for _ in range(3):
            status, _, body = envoy.get("/any", minter.token(alg="ES256", iss="https://evil.example/"))
            assert status == 401 and body["code"] == "invalid_claims", body
        assert issuer.jwks_requests() == before
    finally:
        assert envoy.stop() == 0
        minter.close()


def loop(envoy, token_of, stop, statuses, errors):
    while not stop.is_set():
        try:
            statuses.append(envoy.get("/api/private", token_of())[0])
        except OSError as error:
            errors.append(repr(error))


def test_rotation_under_load_and_an_issuer_outage_refuse_nothing_valid(ports):
    issuer = DevIssuer()
    port, admin = ports
    config = example_config(issuer.url, port, admin).replace(
        "realm: api", "realm: api\n                  refetch_cooldown: 1")
    envoy = Envoy(config, port, admin, concurrency=2)
    current = {"token": issuer.token()}
    stop, statuses, errors = threading.Event(), [], []
    clients = [threading.Thread(target=loop, args=(envoy, lambda: current["token"], stop, statuses, errors))
               for _ in range(4)]
    try:
        for c in clients:
            c.start()
        # A new kid may refetch once a second per URL: rotations come further apart than that.
        for _ in range(3):
            time.sleep(1.3)
            issuer.rotate()
            current["token"] = issuer.token()
        time.sleep(1.0)
        # The issuer goes away: the keys in hand keep serving.
        issuer.stop()
        time.sleep(1.0)
    finally:
        stop.set()
        for c in clients:
            c.join()
    try:
        refused = [s for s in statuses if s != 200]
        assert len(statuses) > 200
        assert refused == [] and errors == [], (refused[:10], errors[:3], envoy.stats())
    finally:
        assert envoy.stop() == 0


def test_started_while_the_issuer_is_down_then_serves_once_it_is_up(ports):
    issuer = DevIssuer()
    issuer.fault(mode="drop")
    issuer.fault(mode="drop", endpoint="discovery")
    port, admin = ports
    envoy = Envoy(example_config(issuer.url, port, admin), port, admin)
    try:
        token = issuer.token()
        status, headers, body = envoy.get("/api/private", token)
        assert (status, body["code"]) == (503, "jwks_unavailable")
        assert headers["Retry-After"] == "5" and "WWW-Authenticate" not in headers
        issuer.fault(mode="off")
        issuer.fault(mode="off", endpoint="discovery")
        deadline = time.monotonic() + 10
        while envoy.get("/api/private", token)[0] != 200:
            assert time.monotonic() < deadline, "keys after the outage"
            time.sleep(0.2)
        assert envoy.stats()["dynamicmodulescustom.jwtguard_keys_unavailable"] >= 1
    finally:
        assert envoy.stop() == 0
        issuer.stop()


def test_a_bad_config_is_refused_at_load_with_a_message(ports):
    for filter_config, message in [
        ({"issuer": "https://i.example/", "audience": "a", "require_scopes": ["x"]}, 'unknown key "require_scopes"'),
        ({"audience": "a"}, "issuer: required"),
        ({"issuer": "https://i.example/", "audience": "a", "leeway": 86400}, "leeway"),
        ({"issuer": "https://i.example/", "issuers": [{"issuer": "https://j.example/", "audience": "a"}]},
         "issuers: give issuer inside each entry, not beside issuers"),
        ({"issuers": [{"issuer": "https://i.example/", "audience": "a"}, {"issuer": "https://j.example/"}]},
         "issuers[1]: audience: required"),
        ({"issuers": [{"issuer": "https://i.example/", "audience": "a"}, {"issuer": "https://i.example/", "audience": "b"}]},
         "configured twice"),
        ({"issuers": []}, "issuers: an empty list"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop": "on"}, "dpop: off, allowed or required"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_algorithms": ["HS256"]}, "dpop_algorithms"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_window": 0}, "DPoP proof window"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_replay_cache": 0}, "DPoP replay cache"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_origins": ["https://api.example/v1"]},
         'dpop_origins: "https://api.example/v1" is not an origin'),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_origins": "api.example"}, "is not an origin"),
        ({"issuer": "https://i.example/", "audience": "a", "dpop_scheme": "HTTPS"}, "dpop_scheme: http or https"),
    ]:
        port, admin = free_port(), free_port()
        envoy = Envoy(bootstrap(port, admin, filter_config, [direct("/x")]), port, admin, suffix=".json", wait=False)
        try:
            envoy.process.wait(timeout=30)
        finally:
            if envoy.process.poll() is None:
                envoy.process.kill()
        text = envoy.text()
        assert envoy.process.returncode != 0
        assert f"jwtguard: invalid filter_config: {message}" in text or message in text, text[-2000:]
        assert "Segmentation fault" not in text and "panicked" not in text


def test_sigterm_with_a_fetch_in_flight_exits_cleanly(ports):
    issuer = DevIssuer()
    issuer.fault(mode="delay", ms=4000)
    issuer.fault(mode="delay", ms=4000, endpoint="discovery")
    port, admin = ports
    envoy = Envoy(example_config(issuer.url, port, admin), port, admin)
    try:
        # A request waits for keys; the fetch hangs on the slow issuer.
        answers: list = []

        def wait_for_keys():
            try:
                answers.append(envoy.get("/api/private", issuer.token())[0])
            except OSError as error:  # Envoy went away first
                answers.append(repr(error))

        waiting = threading.Thread(target=wait_for_keys)
        waiting.start()
        time.sleep(0.5)
        started = time.monotonic()
        assert envoy.stop(timeout=15) == 0
        assert time.monotonic() - started < 15
        waiting.join(timeout=15)
        assert len(answers) == 1, "the waiting request ended"
        assert "Segmentation fault" not in envoy.text() and "panicked" not in envoy.text()
    finally:
        issuer.stop()


def test_the_module_under_valgrind_has_no_memory_error_and_leaks_nothing(issuer, ports, tmp_path):
    """The module's memory checked inside the real Envoy. AddressSanitizer cannot run here: the
    Envoy binary exports its own (tcmalloc) malloc, and with the ASan runtime preloaded it
    crashes at start. Valgrind replaces that malloc (--soname-synonyms=somalloc=NONE). Envoy's
    own reports are Envoy's; any report, error or leak, with a frame in the module fails."""
    port, admin = ports
    log = tmp_path / "valgrind.log"
    wrapper = ["valgrind", "-v", "--soname-synonyms=somalloc=NONE", "--leak-check=full",
               "--show-leak-kinds=definite,indirect", "--errors-for-leak-kinds=definite,indirect",
               "--num-callers=50", f"--log-file={log}"]
    envoy = Envoy(example_config(issuer.url, port, admin), port, admin, wrapper=wrapper, ready_seconds=240)
    try:
        token, plain = issuer.token("read:messages").encode(), issuer.token("openid").encode()
        for name, (request, want) in host_cases(token, plain).items():
            assert raw(port, request)[0] == want, name
        # A rotation: the new key is fetched by the module while it serves.
        issuer.rotate()
        rotated = issuer.token("read:messages")
        assert envoy.get("/api/private-scoped", rotated)[0] == 200
        assert envoy.get("/api/private", issuer.token(expires_in=-300))[0] == 401
        huge = "x" * 60_000
        assert envoy.get("/api/private", None, {"Authorization": f"Bearer {huge}"})[0] in (400, 401, 431)
        allowed = envoy.stats()["dynamicmodulescustom.jwtguard_allowed"]
        assert allowed == 4, allowed  # valid, two spaces, scoped, rotated
    finally:
        assert envoy.stop(timeout=180) == 0
    text = log.read_text(errors="replace")
    assert "ERROR SUMMARY" in text, text[-2000:]
    # -v lists every object valgrind read: the module was loaded under it.
    assert re.search(r"Reading syms from \S*/libjwtguard_envoy\.so", text), text[:3000]
    ours = module_reports(text)
    assert not ours, "\n".join(ours[:5])


# A valgrind stack frame: `==PID==    at|by 0xADDR: FUNCTION (in OBJECT)` without debug info,
# `(FILE:LINE)` with it.
FRAME = re.compile(r"^==\d+==\s+(?:at|by) 0x[0-9A-Fa-f]+: (?P<function>.*) \((?P<where>[^()]*)\)\s*$")
# The module's own object (the core is linked into it; libjwtguard.so should it ever be loaded).
MODULE_OBJECTS = re.compile(r"^lib(jwtguard_envoy|jwtguard)\.so(\.\d+)*$")
# Rust paths of the module's and the core's crates (demangled, or legacy-mangled), and the
# module's exported hooks: a frame with debug info names its function and file, not its object.
MODULE_SYMBOLS = re.compile(r"(^|[^A-Za-z0-9_])(jwtguard|jwtguard_envoy)::|_ZN8jwtguard|_ZN14jwtguard_envoy"
                            r"|^envoy_dynamic_module_on_")


def is_module_frame(line: str) -> bool:
    """Whether a valgrind stack frame is the module's: by its object's file name or by a Rust
    symbol of its crates, never by a directory (a checkout named `jwtguard` holds Envoy itself,
    under .venv, and every other object it loads)."""
    frame = FRAME.match(line)
    if frame is None:
        return False
    where = frame.group("where")
    if where.startswith("in ") and MODULE_OBJECTS.match(where[3:].rsplit("/", 1)[-1]):
        return True
    return bool(MODULE_SYMBOLS.search(frame.group("function")))


def module_reports(text: str) -> list[str]:
    """The reports (errors and leaks) of a valgrind log with a frame in the module."""
    records = re.split(r"^==\d+== ?$", text, flags=re.M)
    return [record for record in records if any(is_module_frame(line) for line in record.splitlines())]


def test_the_valgrind_frame_matcher_knows_the_module_by_its_object_and_symbols():
    """Review 3, item 11: in a clone named `jwtguard`, every frame of Envoy's own binary sits
    under <checkout>/.venv/..., and a match on the word in a path made Envoy's reports the
    module's (`make test` failed on a fresh clone)."""
    envoy = "/root/jwtguard/.venv/lib/python3.11/site-packages/envoy/_bin/envoy"
    theirs = [
        f"==12==    at 0x4D3A2B1: operator new(unsigned long) (in {envoy})",
        f"==12==    by 0x4D3A2B1: Envoy::Http::FilterManager::decodeHeaders(...) (in {envoy})",
        "==12==    by 0x4D3A2B1: Envoy::Server::InstanceImpl::run() (server.cc:981)",
        "==12==    at 0x483877F: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)",
        "==12==    by 0x4D3A2B1: ??? (in /root/jwtguard/target/release/libjwtguard_envoyx.so)",
        "==12==    by 0x4D3A2B1: notjwtguard::thing (lib.rs:3)",
        "==12==    by 0x4D3A2B1: start_thread (pthread_create.c:442)",
        "==12== 48 bytes in 1 blocks are definitely lost in loss record 3 of 9",
    ]
    ours = [
        "==12==    by 0x6A1C2F0: ??? (in /root/jwtguard/target/release/libjwtguard_envoy.so)",
        "==12==    by 0x6A1C2F0: ??? (in /usr/lib/libjwtguard.so.0.1.0)",
        "==12==    by 0x6A1C2F0: jwtguard::jwks::cache::Cache::fetch (cache.rs:211)",
        "==12==    by 0x6A1C2F0: <jwtguard_envoy::ffi::Filter as core::ops::drop::Drop>::drop (mod.rs:40)",
        "==12==    by 0x6A1C2F0: core::ptr::drop_in_place<jwtguard::verify::Verifier> (mod.rs:523)",
        "==12==    by 0x6A1C2F0: _ZN8jwtguard6verify8Verifier3new17h0123456789abcdefE (in /x/y.so)",
        "==12==    by 0x6A1C2F0: envoy_dynamic_module_on_http_filter_request_headers (mod.rs:590)",
    ]
    assert [line for line in theirs if is_module_frame(line)] == []
    assert [line for line in ours if not is_module_frame(line)] == []
    log = "\n".join(["==12== ", *theirs, "==12== ", theirs[-1], ours[2], theirs[0], "==12== "])
    reports = module_reports(log)
    assert len(reports) == 1 and "Cache::fetch" in reports[0], reports



def dpop_answer(answer) -> str:
    """'ok' for the route's body, else the refusal's description (raw bytes of a JSON body)."""
    if answer == b"ok":
        return "ok"
    return json.loads(answer)["description"]


def test_the_proof_url_scheme_is_the_connections_never_the_clients(ports, tmp_path):
    """Review 3, item 3: on a cleartext listener, an absolute-form request line
    (`GET https://api/any`), a client's X-Forwarded-Proto or an HTTP/2 client's own
    `:scheme: https` set Envoy's :scheme; a
    proof made for the https URL must not be accepted over plain HTTP. The scheme is the
    connection's (https over TLS), or the operator's dpop_scheme."""
    minter = Minter()
    client = DpopClient("ES256")
    bound = minter.token(cnf={"jkt": client.jkt()})
    # The requests name `api` on whatever port Envoy listens on: pinned (both schemes, so only
    # the scheme of the URL built decides), the client's authority is taken as sent.
    settings = {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri,
                "dpop_origins": ["http://api", "https://api"]}
    routes = [direct("/any", body="ok")]
    mismatch = "DPoP proof is for another URL (htu)"

    def origin_form(url: str) -> bytes:
        return request_bytes(b"/any", b"Authorization: DPoP " + bound.encode(),
                             b"DPoP: " + client.proof(url=url, token=bound).encode())

    def absolute_form(target: str, url: str) -> bytes:
        return (b"GET " + target.encode() + b" HTTP/1.1\r\nHost: api\r\nAuthorization: DPoP " + bound.encode()
                + b"\r\nDPoP: " + client.proof(url=url, token=bound).encode() + b"\r\nConnection: close\r\n\r\n")

    def h2c(scheme: str, url: str) -> str:
        return dpop_answer(h2c_request(port, [
            (":method", "GET"), (":scheme", scheme), (":authority", "api"), (":path", "/any"),
            ("authorization", "DPoP " + bound), ("dpop", client.proof(url=url, token=bound))]))

    # Cleartext HTTP/1.1 and h2c: the URL is http, whatever the client says.
    port, admin = ports
    envoy = Envoy(bootstrap(port, admin, settings, routes), port, admin, suffix=".json")
    try:
        plain = lambda request: dpop_answer(raw(port, request)[2])  # noqa: E731
        assert plain(origin_form("http://api/any")) == "ok"
        assert plain(origin_form("https://api/any")) == mismatch
        assert plain(absolute_form("https://api/any", "https://api/any")) == mismatch
        assert plain(absolute_form("https://api/any", "http://api/any")) == "ok"
        # Envoy (not at the edge) also takes :scheme from a client's X-Forwarded-Proto.
        forwarded = origin_form("https://api/any").replace(b"Host: api", b"Host: api\r\nX-Forwarded-Proto: https")
        assert plain(forwarded) == mismatch
        assert h2c("https", "https://api/any") == mismatch
        assert h2c("https", "http://api/any") == "ok"
        assert h2c("http", "http://api/any") == "ok"
    finally:
        assert envoy.stop() == 0
    # A TLS listener: https, even for an absolute-form http:// request line.
    cert, key = self_signed(tmp_path)
    port, admin = free_port(), free_port()
    envoy = Envoy(with_tls(bootstrap(port, admin, settings, routes), cert, key), port, admin, suffix=".json")
    try:
        tls = lambda request: dpop_answer(tls_raw_request(port, request)[1])  # noqa: E731
        assert tls(origin_form("https://api/any")) == "ok"
        assert tls(origin_form("http://api/any")) == mismatch
        assert tls(absolute_form("http://api/any", "http://api/any")) == mismatch
        assert tls(absolute_form("http://api/any", "https://api/any")) == "ok"
    finally:
        assert envoy.stop() == 0
    # Behind a proxy that terminates TLS, the operator says the public scheme.
    port, admin = free_port(), free_port()
    envoy = Envoy(bootstrap(port, admin, {**settings, "dpop_scheme": "https"}, routes), port, admin, suffix=".json")
    try:
        assert plain(origin_form("https://api/any")) == "ok"
        assert plain(origin_form("http://api/any")) == mismatch
        assert h2c("http", "https://api/any") == "ok"
    finally:
        assert envoy.stop() == 0
        minter.close()


def test_pinned_dpop_origins_refuse_a_proof_for_a_spoofed_host(ports):
    """Review 3, item 17: `:authority` is the client's (Host, or an absolute-form request line).
    With dpop_origins set, a proof is good only for a URL on one of them, whatever Host the
    client sent; without them, any host name the client names is believed, on the port the
    connection arrived on."""
    minter = Minter()
    client = DpopClient("ES256")
    bound = minter.token(cnf={"jkt": client.jkt()})
    mismatch = "DPoP proof is for another URL (htu)"

    def call(port: int, host: str, url: str, target: str = "/any") -> str:
        request = (b"GET " + target.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\nAuthorization: DPoP "
                   + bound.encode() + b"\r\nDPoP: " + client.proof(url=url, token=bound).encode()
                   + b"\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n")
        return dpop_answer(raw(port, request)[2])

    settings = {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri}
    try:
        for origins, spoof_answer in ((None, "ok"), (["http://api", "https://api.example"], mismatch)):
            port, admin = free_port(), free_port()
            config = {**settings, "dpop_origins": origins} if origins else settings
            envoy = Envoy(bootstrap(port, admin, config, [direct("/any", body="ok")]), port, admin, suffix=".json")
            try:
                # Unpinned, the client names the port it reached (pinned: 80, mapped).
                at = "" if origins else f":{port}"
                assert call(port, "api" + at, f"http://api{at}/any") == "ok"
                assert call(port, "API" + (at or ":80"), f"http://api{at}/any") == "ok"
                assert call(port, "evil.example" + at, f"http://evil.example{at}/any") == spoof_answer
                assert call(port, "api" + at, f"http://evil.example{at}/any",
                            target=f"http://evil.example{at}/any") == spoof_answer
                # X-Forwarded-Host is never the module's to read.
                assert call(port, "api" + at, "http://evil.example/any") == mismatch
            finally:
                assert envoy.stop() == 0
    finally:
        minter.close()


def test_the_proof_url_port_is_the_listeners_unless_origins_are_pinned(ports):
    """Review 3, items 2 and 17 (as nginx, b4591fb): Envoy routes by the listener, never by the
    port a client writes in :authority. Two listeners on two ports serving the same name, each
    with its own filter config (own verifier and replay cache): a proof used at P2 must not be
    good again at P1 with `Host: api.example:P2`. Unpinned, the URL's port is the connection's
    (destination.port; the request naming P1 at P1 passing shows the attribute is the
    listener's port), which the authority must name (none: 80); with dpop_origins pinned, the
    authority is taken as sent (a public port mapped to the listener's)."""
    minter = Minter()
    client = DpopClient("ES256")
    bound = minter.token(cnf={"jkt": client.jkt()})
    settings = {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri}
    routes = [direct("/x", body="ok")]
    mismatch = "DPoP proof is for another URL (htu)"
    replayed = "DPoP proof was already used (jti)"

    def call(port: int, authority: str, proof: str, target: str = "/x") -> str:
        request = (b"GET " + target.encode() + b" HTTP/1.1\r\nHost: " + authority.encode()
                   + b"\r\nAuthorization: DPoP " + bound.encode() + b"\r\nDPoP: " + proof.encode()
                   + b"\r\nConnection: close\r\n\r\n")
        return dpop_answer(raw(port, request)[2])

    def proof(url: str) -> str:
        return client.proof(url=url, token=bound)

    p1, a1 = ports
    p2, a2 = free_port(), free_port()
    one = Envoy(bootstrap(p1, a1, settings, routes), p1, a1, suffix=".json")
    two = Envoy(bootstrap(p2, a2, settings, routes), p2, a2, suffix=".json")
    try:
        used = proof(f"http://api.example:{p2}/x")
        assert call(p2, f"api.example:{p2}", used) == "ok"
        assert call(p2, f"api.example:{p2}", used) == replayed
        assert call(p1, f"api.example:{p2}", used) == mismatch
        # A fresh proof for P2's URL, at P1: refused for its port, not as a replay.
        assert call(p1, f"api.example:{p2}", proof(f"http://api.example:{p2}/x")) == mismatch
        assert call(p1, f"api.example:{p1}", proof(f"http://api.example:{p2}/x"),
                    target=f"http://api.example:{p2}/x") == mismatch
        # No port is port 80, not this listener's.
        assert call(p1, "api.example", proof("http://api.example/x")) == mismatch
        # The port the client reached: the URL it signed.
        assert call(p1, f"api.example:{p1}", proof(f"http://api.example:{p1}/x")) == "ok"
        assert call(p1, f"API.example:{p1}", proof(f"http://api.example:{p1}/x")) == "ok"
    finally:
        assert one.stop() == 0
        assert two.stop() == 0
    # Pinned to a public origin on another port than the listener's: its proofs pass.
    p3, a3 = free_port(), free_port()
    pinned = {**settings, "dpop_origins": ["http://api.example:8443"]}
    three = Envoy(bootstrap(p3, a3, pinned, routes), p3, a3, suffix=".json")
    try:
        assert call(p3, "api.example:8443", proof("http://api.example:8443/x")) == "ok"
        assert call(p3, f"api.example:{p3}", proof(f"http://api.example:{p3}/x")) == mismatch
    finally:
        assert three.stop() == 0
        minter.close()


def test_several_issuer_names_by_discovery_each_trust_only_their_own_keys(issuer, ports):
    """Review 3, item 1: `"issuer": [C, A, B]` without jwks_uri. Each name discovers its own
    keys: each issuer's own token passes, and a token claiming A or B signed with C's key (C
    signs whatever it is asked to) is refused."""
    other, forger = DevIssuer(), DiscoveryMinter()
    port, admin = ports
    # The forger first: once, the first name's keys verified tokens of every name.
    names = [forger.url, issuer.url, other.url]
    config = bootstrap(port, admin, {"issuer": names, "audience": AUDIENCE, "algorithms": ["RS256", "ES256"],
                                     "forward_claims": {"iss": "x-iss"}}, [direct("/any", body="ok")])
    envoy = Envoy(config, port, admin, suffix=".json")
    try:
        for token in (issuer.token(), other.token(), forger.token()):
            status, _, body = envoy.get("/any", token)
            assert (status, body) == (200, "ok"), body
        for claimed in (issuer.url, other.url):
            status, head, body = envoy.get("/any", forger.token(iss=claimed))
            # (C's kid is not in A's or B's key set: the seed's "Unable to find appropriate key".)
            assert (status, body["description"]) == (401, "Unable to find appropriate key"), (claimed, body)
            assert 'error="invalid_token"' in head["WWW-Authenticate"]
        # And once more after each issuer's keys are in hand (no first-fetch ordering luck).
        assert envoy.get("/any", forger.token(iss=other.url))[0] == 401
        assert envoy.get("/any", other.token())[0] == 200
    finally:
        assert envoy.stop() == 0
        other.stop()
        forger.close()


def test_what_envoys_http_layer_decides_before_the_module(issuer, ports):
    """Review 3, item 16: what Envoy's own HTTP/1 codec does to an Authorization header before
    the module sees it (the README states it; this says when it stops being true). A control
    byte (DEL, 0x01, NUL) is refused by Envoy itself: 400 with its own text body, no JSON, no
    challenge. A bare CR inside the value is deleted. Repeated lines reach the module as one
    value joined with ",", so two tokens are refused (400), but an empty line adds nothing: a
    valid token beside an empty `Authorization:` line passes, where other hosts answer 400.
    The module cannot see either: the header map it reads holds one value."""
    port, admin = ports
    envoy = Envoy(example_config(issuer.url, port, admin), port, admin)
    try:
        token = issuer.token().encode()
        for byte in (b"\x7f", b"\x01", b"\x00"):
            status, head, body = raw(port, request_bytes(b"/api/private", b"Authorization: Bearer " + token + byte))
            assert (status, body, "www-authenticate" in head) == (400, b"Bad Request", False), byte
        for lines in ([b"Authorization: Bearer " + token[:20] + b"\r" + token[20:]],
                      [b"Authorization: Bearer " + token, b"Authorization: "],
                      [b"Authorization:", b"Authorization: Bearer " + token]):
            status, _, body = raw(port, request_bytes(b"/api/private", *lines))
            assert (status, body.decode()) == (200, PRIVATE), lines
        status, _, body = raw(port, request_bytes(b"/api/private", b"Authorization: Bearer " + token,
                                                  b"Authorization: Bearer " + token))
        assert (status, json.loads(body)["description"]) == (400, MALFORMED)
    finally:
        assert envoy.stop() == 0
