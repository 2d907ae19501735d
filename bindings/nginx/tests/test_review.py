"""Regression tests for the outside review (issue 8) against the real nginx with the module:
verdicts across internal redirects, claim text in headers, subrequests, $jwt_status,
configuration bounds, and replacing the module under a running nginx. Each test names the
review item it covers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import AUDIENCE, EXAMPLES, MODULE, ROOT, Nginx, free_port, fresh_prefix, http, run_nginx

sys.path.insert(0, str(ROOT / "tests" / "support"))
from harness import (  # noqa: E402
    MINTED_ISSUER, PingServers, RecordingUpstream, assert_hosts_agree, host_cases, raw_request, request_bytes,
)
from minter import Minter  # noqa: E402
from dpop import NO_TOKEN_CHALLENGE, DpopClient  # noqa: E402


def accel_upstream() -> RecordingUpstream:
    """The shared recording upstream; under /accel/ it answers with an X-Accel-Redirect to
    /internal-admin/."""
    return RecordingUpstream(
        lambda path: {"X-Accel-Redirect": "/internal-admin/x"} if path.startswith("/accel/") else {}
    )


CONFIG = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format claims '$request $status [$jwt_claims] [$jwt_claim_sub] [$jwt_status]';
    access_log logs/access.log claims;
    default_type application/json;
    jwtguard_issuer {issuer};
    jwtguard_audience {audience};
    jwtguard_jwks_uri {jwks_uri};
    jwtguard_claim_variable $jwt_client_id clientId;
    server {{
        listen 127.0.0.1:{port};
        root html;
        location = /nginx-up {{ return 204; }}

        location /a/ {{ jwtguard on; try_files /nonexistent @admin; }}
        location /admin/ {{ jwtguard on; jwtguard_require_scope admin; try_files /api/private.json =404; }}
        location @admin {{ jwtguard on; jwtguard_require_scope admin; proxy_pass {upstream}; }}
        location /b/ {{ jwtguard on; try_files /nonexistent @other; }}
        location /other/ {{ jwtguard on; jwtguard_audience https://other.example; try_files /api/private.json =404; }}
        location @other {{ jwtguard on; jwtguard_audience https://other.example; proxy_pass {upstream}; }}
        location /c/ {{ jwtguard on; error_page 404 = @admin; try_files /nonexistent =404; }}
        location /accel/ {{ jwtguard on; proxy_set_header X-Claims $jwt_claims; proxy_pass {upstream}; }}
        location /internal-admin/ {{ internal; jwtguard on; jwtguard_require_scope admin; proxy_pass {upstream}; }}
        location /deny/ {{ jwtguard on; error_page 401 403 = @deny; try_files /api/private.json =404; }}
        location @deny {{ jwtguard on; jwtguard_require_scope admin; proxy_pass {upstream}; }}
        location /any/ {{
            satisfy any; allow 127.0.0.1; deny all;
            jwtguard on; error_page 404 = @admin; try_files /nonexistent =404;
        }}
        location /any-unavailable/ {{
            satisfy any; allow 127.0.0.1; deny all;
            jwtguard on; error_page 503 = @described; try_files /nonexistent =503;
        }}
        location @described {{ return 503 "[$jwt_error_code][$jwt_error_description]"; }}
        location /same/ {{ jwtguard on; try_files /nonexistent @same; }}
        location @same {{ jwtguard on; add_header X-Status $jwt_status always; proxy_pass {upstream}; }}

        location /inject/ {{
            jwtguard on;
            add_header X-Subject $jwt_claim_sub always;
            add_header X-Tags $jwt_claim_tags always;
            add_header X-Claims $jwt_claims always;
            add_header X-Client-Id $jwt_client_id always;
            proxy_set_header X-User $jwt_claim_sub;
            proxy_set_header X-Tags $jwt_claim_tags;
            proxy_pass {upstream};
        }}

        location = /dead-issuer {{ jwtguard on; jwtguard_jwks_uri http://127.0.0.1:9/jwks.json; try_files /api/private.json =404; }}

        location = /never-verified {{ add_header X-Status "[$jwt_status]" always; try_files /api/public.json =404; }}

        location /sub/ {{ auth_request /check; try_files /api/private.json =404; }}
        location = /check {{ internal; jwtguard on; jwtguard_require_scope read:messages; return 204; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        jwtguard on;
        root html;
        error_page 401 /errors/401.json;
        location = /nginx-up {{ jwtguard off; return 204; }}
        location /errors/ {{ internal; }}
        location / {{ try_files /api/private.json =404; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def minter():
    m = Minter()
    yield m
    m.close()


@pytest.fixture(scope="module")
def upstream():
    u = accel_upstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def nginx(minter, upstream):
    port, port2 = free_port(), free_port()
    path = fresh_prefix("review")
    shutil.copytree(EXAMPLES / "html", path / "html")
    (path / "html" / "errors").mkdir()
    (path / "html" / "errors" / "401.json").write_text('{"custom":"401 page"}\n')
    for p in [path / "html", *(path / "html").rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    config = CONFIG.format(
        issuer=MINTED_ISSUER, audience=AUDIENCE, jwks_uri=minter.jwks_uri, upstream=upstream.url, port=port, port2=port2
    )
    server = Nginx(path, config, port)
    server.base2 = f"http://127.0.0.1:{port2}"
    server.upstream = upstream
    yield server
    server.close()
    shutil.rmtree(path, ignore_errors=True)


def test_item1_a_verdict_is_reused_only_under_the_same_policy(nginx, minter):
    reader = minter.token(scope="read:messages")
    admin = minter.token(scope="read:messages admin")
    # Direct: refused for want of the scope.
    assert nginx.get("/admin/x", reader)[0] == 403
    # Through try_files into a named location with a stricter policy: refused the same way.
    status, headers, _ = nginx.get("/a/x", reader)
    assert status == 403
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert nginx.get("/a/x", admin)[0] == 200
    # Another audience in the named location: 401 directly and through the fallback.
    assert nginx.get("/other/x", reader)[0] == 401
    assert nginx.get("/b/x", reader)[0] == 401
    # error_page ... = @admin and X-Accel-Redirect to a stricter location.
    assert nginx.get("/c/x", reader)[0] == 403
    assert nginx.get("/c/x", admin)[0] == 200
    assert nginx.get("/accel/x", reader)[0] == 403
    assert nginx.get("/accel/x", admin)[0] == 200
    # A refusal's error page under a stricter policy is verified against that policy, not
    # served on the strength of the first refusal; neither is a 404's error page reached
    # through `satisfy any` (allowed by address, no token).
    upstream_calls = len(nginx.upstream.seen)
    assert nginx.get("/deny/x")[0] == 401
    assert nginx.get("/deny/x", minter.token(aud="https://other.example"))[0] == 401
    assert nginx.get("/any/x")[0] == 401
    assert nginx.get("/any/x", reader)[0] == 403
    assert len(nginx.upstream.seen) == upstream_calls, "no refused request reached the upstream"
    assert nginx.get("/any/x", admin)[0] == 200
    # Claims of an earlier verdict stay valid for the access log after a re-verification.
    for _ in range(20):
        assert nginx.get("/accel/x", reader)[0] == 403
    time.sleep(0.3)
    log = (nginx.prefix / "logs" / "access.log").read_text()
    assert "GET /accel/x HTTP/1.1 403 [{" in log, log[-500:]
    # The same policy through a redirect: the verdict stands (and no token stays refused).
    status, headers, _ = nginx.get("/same/x", reader)
    assert (status, headers["X-Status"]) == (200, "ok")
    assert nginx.get("/a/x")[0] == 401


def test_item1_an_error_page_for_a_refusal_is_served_with_one_challenge(nginx):
    status, headers, body = http("GET", nginx.base2 + "/anything")
    assert status == 401
    assert headers.get_all("WWW-Authenticate") == [NO_TOKEN_CHALLENGE]
    assert body == {"custom": "401 page"}


def test_item3_claim_text_never_injects_headers(nginx, minter, upstream):
    hostile = minter.token(sub="x\r\nSet-Cookie: pwned=1", tags=["a\r\nX-Admin: true", "b"], note="\u0000\\")
    status, headers, _ = nginx.get("/inject/x", hostile)
    assert status == 200
    assert headers.get_all("Set-Cookie") is None
    assert headers["X-Subject"] == "x\\r\\nSet-Cookie: pwned=1"
    # An array's elements are joined by spaces: a space inside one is escaped.
    assert headers["X-Tags"] == "a\\r\\nX-Admin:\\u0020true b"
    assert json.loads(headers["X-Claims"])["sub"] == "x\r\nSet-Cookie: pwned=1"
    received = upstream.seen[-1]
    assert received["x-user"] == "x\\r\\nSet-Cookie: pwned=1"
    assert "x-admin" not in received and "set-cookie" not in received
    # A plain claim arrives as it is.
    nginx.get("/inject/x", minter.token(sub="alice@example.com"))
    assert upstream.seen[-1]["x-user"] == "alice@example.com"


def test_item20_a_camel_case_claim_is_reachable_by_its_own_variable(nginx, minter):
    status, headers, _ = nginx.get("/inject/x", minter.token(clientId="app-7\r\nX-Admin: 1", clientid="lower"))
    assert status == 200
    # the exact name, not the lowercased one; header-safe like every claim variable
    assert headers["X-Client-Id"] == "app-7\\r\\nX-Admin: 1"
    assert "X-Admin" not in headers
    status, headers, _ = nginx.get("/inject/x", minter.token())
    assert status == 200 and "X-Client-Id" not in headers


def test_item24_an_overruled_refusal_does_not_describe_a_later_error(nginx):
    # satisfy any: the address is allowed, so the missing token's refusal is overruled; the
    # 503 that follows (try_files) is not jwtguard's and is not described as a refusal.
    status, headers, body = nginx.get("/any-unavailable/x")
    assert (status, body) == (503, "[][]")
    assert "WWW-Authenticate" not in headers


def test_item11_jwt_status_is_empty_for_requests_never_verified(nginx):
    status, headers, _ = nginx.get("/never-verified")
    assert (status, headers["X-Status"]) == (200, "[]")


def test_item26_an_outage_is_not_one_warning_per_request(nginx, minter):
    token = minter.token()
    log = nginx.prefix / "logs" / "error.log"
    before = log.read_text().count("[warn]")
    started = time.monotonic()
    for _ in range(300):
        assert nginx.get("/dead-issuer", token)[0] == 503
    seconds = time.monotonic() - started
    text = log.read_text()
    warnings = text.count("[warn]") - before
    assert warnings <= seconds + 2, f"{warnings} warnings for 300 refusals in {seconds:.1f} s"
    assert "request(s) refused since the last report: keys unavailable" in text
    assert "[info]" in text and "request refused: keys_unavailable" in text


def test_item27_subrequests_are_enforced(nginx, minter):
    status, headers, _ = nginx.get("/sub/x")
    assert status == 401
    assert headers["WWW-Authenticate"] == NO_TOKEN_CHALLENGE
    none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + minter.token().split(".")[1] + "."
    assert nginx.get("/sub/x", none_alg)[0] == 401
    assert nginx.get("/sub/x", minter.token(scope="openid"))[0] == 403
    status, _, body = nginx.get("/sub/x", minter.token(scope="read:messages"))
    assert status == 200 and body["message"].startswith("Hello from a private endpoint")


def nginx_t(config: str) -> subprocess.CompletedProcess:
    path = fresh_prefix("config-test")
    try:
        (path / "modules").mkdir()
        (path / "modules" / "ngx_http_jwtguard_module.so").symlink_to(MODULE)
        (path / "logs").mkdir()
        (path / "nginx.conf").write_text(config)
        return run_nginx("-t", "-p", str(path), "-c", "nginx.conf", capture_output=True, text=True)
    finally:
        shutil.rmtree(path, ignore_errors=True)


MINIMAL = """
load_module modules/ngx_http_jwtguard_module.so;
pid nginx.pid;
error_log logs/error.log;
events {{ }}
http {{
    jwtguard_issuer https://tenant.example/;
    jwtguard_audience https://api.example;
    {extra}
    server {{ listen 127.0.0.1:{port}; location / {{ jwtguard on; {location} }} }}
}}
"""


@pytest.mark.parametrize(
    "extra, location, message",
    [
        ("", "jwtguard_leeway 2h;", "out of range"),
        ("jwtguard_max_stale 365d;", "", "out of range"),
        ("jwtguard_refetch_cooldown 30d;", "", "out of range"),
        ("jwtguard_cache_ttl 30d;", "", "out of range"),
        ("", "jwtguard_leeway -1;", "invalid value"),
        ("", 'jwtguard_require_scope "read messages";', "invalid scope"),
        ("", 'jwtguard_require_scope "read\\"x";', "invalid scope"),
        ("jwtguard_token_cache 99999999999;", "", "out of range"),
        ("jwtguard_token_cache lots;", "", "needs a number of entries"),
        ("", "jwtguard_dpop on;", "invalid value"),
        ("", "jwtguard_dpop_window 2h;", "out of range"),
        ("jwtguard_dpop_replay_cache 0;", "", "out of range"),
    ],
)
def test_item7_item20_out_of_range_settings_and_bad_scopes_are_refused(extra, location, message):
    result = nginx_t(MINIMAL.format(extra=extra, location=location, port=free_port()))
    assert result.returncode != 0, result.stderr
    assert message in result.stderr, result.stderr


def test_item7_settings_in_range_are_accepted():
    result = nginx_t(MINIMAL.format(extra="jwtguard_max_stale 2d;", location="jwtguard_leeway 1h;", port=free_port()))
    assert result.returncode == 0, result.stderr
    for cache in ("off", "50000"):
        result = nginx_t(MINIMAL.format(extra=f"jwtguard_token_cache {cache};", location="", port=free_port()))
        assert result.returncode == 0, result.stderr


def test_item22_rebuilding_the_module_under_a_running_nginx_breaks_nothing(prefix, minter):
    port = free_port()
    config = CONFIG.split("    server {{\n        listen 127.0.0.1:{port2};")[0] + "}}\n"
    config = config.replace("proxy_pass {upstream};", "return 204;").format(
        issuer=MINTED_ISSUER, audience=AUDIENCE, jwks_uri=minter.jwks_uri, port=port
    )
    nginx = Nginx(prefix, config, port)
    try:
        token = minter.token(scope="read:messages admin")
        assert nginx.get("/admin/x", token)[0] == 200
        workers = nginx.workers()
        inode = MODULE.stat().st_ino
        # The module this suite runs (`make asan` builds its own in another tree).
        build = os.environ.get("JWTGUARD_NGINX_BUILD", str(ROOT / "target" / "nginx-build"))
        subprocess.run(["make", "-s", "-C", str(ROOT), "install-nginx-module", f"NGINX_MODULE={MODULE}",
                        f"NGINX_BUILD={build}"], check=True)
        assert MODULE.stat().st_ino != inode, "the module file was replaced, not overwritten"
        for _ in range(20):
            assert nginx.get("/admin/x", token)[0] == 200
        assert nginx.workers() == workers, "no worker died"
        time.sleep(0.2)
        assert "exited on signal" not in (prefix / "logs" / "error.log").read_text()
    finally:
        nginx.close()


# Item 25: keys across reloads, a cold cache after an outage, reload with rotation.

DEFAULT_SNAPSHOT = Path("/var/lib/nginx/jwtguard/jwks-snapshot.json")


def outage(issuer, mode: str) -> None:
    """Both of the issuer's endpoints fail (`drop`) or work again (`off`)."""
    issuer.fault(mode=mode)
    issuer.fault(mode=mode, endpoint="discovery")


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def reload_and_wait(nginx) -> None:
    """Reload and wait until every worker is a new one."""
    old = set(nginx.workers())
    nginx.reload()
    wait_for(lambda: (set(nginx.workers()) and not set(nginx.workers()) & old), 15, "new workers")


def test_item25_keys_survive_a_reload_during_an_issuer_outage(prefix):
    from conftest import DevIssuer, example_config

    issuer = DevIssuer()
    port = free_port()
    # The shipped example, with the default snapshot place (no jwtguard_snapshot line).
    nginx = Nginx(prefix, example_config(issuer.url, port), port, own_snapshot=False)
    try:
        token = issuer.token("read:messages")
        assert nginx.get("/api/private", token)[0] == 200
        entry = wait_for(
            lambda: DEFAULT_SNAPSHOT.exists()
            and any(e["url"] == issuer.jwks_uri for e in json.loads(DEFAULT_SNAPSHOT.read_text())["entries"]),
            10,
            "the snapshot entry",
        )
        assert entry
        # Written by the workers (nobody), in a directory the master made for them.
        assert DEFAULT_SNAPSHOT.parent.stat().st_uid == DEFAULT_SNAPSHOT.stat().st_uid != 0
        outage(issuer, "drop")
        reload_and_wait(nginx)
        # New workers, an issuer that drops every connection: the snapshot's keys verify.
        for _ in range(20):
            assert nginx.get("/api/private", token)[0] == 200
        # ... and a bad token is still refused.
        assert nginx.get("/api/private", token[:-4] + "AAAA")[0] == 401
    finally:
        nginx.close()
        issuer.stop()


def test_item25_a_cold_cache_recovers_within_a_second_or_two_after_an_outage(prefix):
    from conftest import DevIssuer, example_config

    issuer = DevIssuer()
    outage(issuer, "drop")
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port).replace("worker_processes 2;", "worker_processes 1;"), port)
    try:
        token = issuer.token("read:messages")
        # 8 s of outage with requests waiting: several failed attempts in a row, which on
        # a warm cache's backoff would mean waiting 8-16 s before the next one.
        started = time.monotonic()
        while time.monotonic() - started < 8:
            assert nginx.get("/api/private", token)[0] == 503
            time.sleep(0.25)
        outage(issuer, "off")
        cleared = time.monotonic()
        wait_for(lambda: nginx.get("/api/private", token)[0] == 200, 10, "keys after the outage")
        took = time.monotonic() - cleared
        print(f"recovered {took:.2f} s after the outage")
        assert took < 2.5, f"a cold cache retries about once a second (took {took:.2f} s)"
    finally:
        nginx.close()
        issuer.stop()


def test_item25_reloads_together_with_rotations_refuse_nothing(prefix):
    from conftest import DevIssuer, example_config

    issuer = DevIssuer()
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port), port)
    current = {"token": issuer.token("read:messages")}
    stop, statuses, errors = threading.Event(), [], []

    def client():
        while not stop.is_set():
            try:
                statuses.append(nginx.get("/api/private-scoped", current["token"])[0])
            except OSError as error:
                errors.append(repr(error))

    clients = [threading.Thread(target=client) for _ in range(4)]
    try:
        for c in clients:
            c.start()
        for _ in range(5):
            time.sleep(0.8)
            issuer.rotate()
            current["token"] = issuer.token("read:messages")
            nginx.reload()
        time.sleep(1.0)
    finally:
        stop.set()
        for c in clients:
            c.join()
        nginx.close()
        issuer.stop()
    refused = [s for s in statuses if s != 200]
    assert len(statuses) > 200
    assert refused == [] and errors == [], (refused[:10], errors[:5])


def test_item25_an_unwritable_snapshot_directory_is_reported_at_start(prefix, minter):
    locked = prefix / "locked"
    locked.mkdir()
    os.chmod(locked, 0o755)
    port = free_port()
    config = f"""
load_module modules/ngx_http_jwtguard_module.so;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    jwtguard_snapshot {locked}/snapshot.json;
    jwtguard_issuer {MINTED_ISSUER};
    jwtguard_audience {AUDIENCE};
    jwtguard_jwks_uri {minter.jwks_uri};
    server {{
        listen 127.0.0.1:{port};
        location = /nginx-up {{ return 204; }}
        location / {{ jwtguard on; return 404; }}
    }}
}}
"""
    nginx = Nginx(prefix, config, port)
    try:
        text = (prefix / "logs" / "error.log").read_text() + nginx.error_log()
        assert "the worker user cannot write the snapshot directory" in text
    finally:
        nginx.close()


# Item 24: every host answers the same request alike, malformed ones included.



def test_item24_the_hosts_answer_malformed_requests_alike(prefix):
    from conftest import DevIssuer, example_config

    issuer = DevIssuer()
    servers = PingServers(issuer.url)
    nginx_port = free_port()
    # One worker: a replayed proof is refused by the worker that saw it first (each worker
    # process keeps its own replay cache), and a new connection may reach either.
    config = example_config(issuer.url, nginx_port).replace(
        "        location / {", "        location = /denied { deny all; }\n\n        location / {", 1
    )
    assert "worker_processes 2;" in config
    config = config.replace("worker_processes 2;", "worker_processes 1;")
    # The shared cases send `Host: api` to every host, on whatever port it listens on: pinned
    # as the public origin (port 80 mapped to nginx's), the proofs for http://api/... pass.
    config = config.replace("http {", "http {\n    jwtguard_dpop_origin http://api;", 1)
    nginx = Nginx(prefix, config, nginx_port)
    try:
        client = DpopClient("ES256")
        bound = (client, client.token_from(issuer.url).encode(), client.token_from(issuer.url, "openid").encode())
        cases = host_cases(issuer.token("read:messages").encode(), issuer.token("openid").encode(), bound)
        assert_hosts_agree({**servers.ports, "nginx": nginx_port}, cases)
        # nginx's own refusals of a malformed request carry the project's JSON too.
        status, headers, body = raw_request(nginx_port, b"GET /api/private HTTP/1.1 x\r\nHost: api\r\n\r\n")
        assert (status, json.loads(body)["code"]) == (400, "bad_request")
        # An error that is not jwtguard's is not described as one (no insufficient_scope).
        status, headers, body = raw_request(nginx_port, request_bytes(b"/denied"))
        assert status == 403 and b"insufficient_scope" not in body and b"code" not in body, body
        assert "www-authenticate" not in headers
    finally:
        servers.close()
        nginx.close()
        issuer.stop()



def test_item25_the_master_never_chowns_what_a_symlink_points_to(prefix, minter):
    # Whoever can write beside the temp directory puts a symlink where the snapshot
    # directory goes: the master (root) must not hand its target to the worker user.
    (prefix / "state").mkdir()
    victim = prefix / "victim"
    victim.write_text("root's file\n")
    (prefix / "state" / "jwtguard").symlink_to(victim)
    port = free_port()
    config = f"""
load_module modules/ngx_http_jwtguard_module.so;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {prefix}/state/body;
    jwtguard_issuer {MINTED_ISSUER};
    jwtguard_audience {AUDIENCE};
    jwtguard_jwks_uri {minter.jwks_uri};
    server {{
        listen 127.0.0.1:{port};
        location = /nginx-up {{ return 204; }}
        location / {{ jwtguard on; return 404; }}
    }}
}}
"""
    nginx = Nginx(prefix, config, port, own_snapshot=False)
    try:
        assert victim.stat().st_uid == 0
        text = (prefix / "logs" / "error.log").read_text() + nginx.error_log()
        assert "is not a directory" in text
    finally:
        nginx.close()
