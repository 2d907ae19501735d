"""The C ping server (bindings/c/examples/ping_server.c) under valgrind, and built with
AddressSanitizer and UBSan, each beside the Flask example against one real dev issuer: the
same tokens get the same statuses, codes and challenges from both, and neither valgrind nor
the sanitizers report an error or a leak after the run."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from dpop import DpopClient  # noqa: E402
from harness import (  # noqa: E402
    AUDIENCE, DevIssuer, assert_hosts_agree, free_port, host_cases, http, raw_request, request_bytes,
)

PING_SERVER = Path(os.environ.get("JWTGUARD_PING_SERVER", ROOT / "target" / "release" / "ping_server"))
FLASK_SERVER = ROOT / "bindings" / "python" / "examples" / "flask_api" / "server.py"
LIBRARY_DIR = Path(os.environ.get("JWTGUARD_LIBRARY", ROOT / "target" / "release" / "libjwtguard.so")).parent
VALGRIND = [
    "valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full", "--num-callers=50",
    "--show-leak-kinds=definite,indirect,possible", "--errors-for-leak-kinds=definite,indirect,possible",
    f"--suppressions={ROOT / 'tests' / 'c' / 'valgrind.supp'}",
]


@pytest.fixture(scope="module")
def asan_server(tmp_path_factory) -> Path:
    """The ping server built with -fsanitize=address,undefined, every report fatal."""
    binary = tmp_path_factory.mktemp("asan") / "ping_server"
    subprocess.run(
        ["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", f"-I{ROOT / 'include'}",
         str(ROOT / "bindings" / "c" / "examples" / "ping_server.c"), "-o", str(binary), f"-L{LIBRARY_DIR}",
         f"-Wl,-rpath,{LIBRARY_DIR}", "-ljwtguard", "-lmicrohttpd", "-pthread"],
        check=True,
    )
    return binary


def wait_up(base: str, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited ({process.returncode})")
        try:
            if http("GET", base + "/api/public")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{name} did not start")


def tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:messages"
    return ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(), sig])


# The Authorization values of the table's other schemes (kind: value).
OTHER_SCHEMES = {"basic": "Basic dXNlcjpwYXNz", "token": "Token x", "digest": "Digest a=b"}

EXPECTED = {
    # (route, token): (status, code or None for a 200 message)
    ("/api/public", "none"): (200, None),
    ("/api/private", "none"): (401, "authorization_header_missing"),
    ("/api/private", "plain"): (200, None),
    ("/api/private", "expired"): (401, "token_expired"),
    ("/api/private", "tampered"): (401, "invalid_token"),
    # Another scheme: 401 with the seed's invalid_header and a challenge without an error
    # (RFC 6750 3.1; review 3, item 9).
    ("/api/private", "basic"): (401, "invalid_header"),
    ("/api/private", "token"): (401, "invalid_header"),
    ("/api/private", "digest"): (401, "invalid_header"),
    ("/api/private", "garbage"): (401, "invalid_header"),
    ("/api/private-scoped", "plain"): (403, "Unauthorized"),
    ("/api/private-scoped", "scoped"): (200, None),
    ("/api/private-scoped", "tampered"): (401, "invalid_token"),
}


@pytest.mark.parametrize("checker", ["valgrind", "asan"])
def test_c_server_matches_the_flask_app_and_is_memory_clean(checker, request):
    issuer = DevIssuer()
    env = dict(os.environ, JWTGUARD_ISSUER=issuer.url, JWTGUARD_AUDIENCE=AUDIENCE)
    for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI", "JWTGUARD_DPOP_ORIGINS"):
        env.pop(key, None)
    if checker == "valgrind":
        command = [*VALGRIND, str(PING_SERVER)]
    else:
        command = [str(request.getfixturevalue("asan_server"))]
        env.update(ASAN_OPTIONS="detect_leaks=1:exitcode=98", UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    c_port, flask_port = free_port(), free_port()
    # The C server's public origins pinned (the host cases all address http://api).
    c_server = subprocess.Popen(
        command,
        env=dict(env, PORT=str(c_port), JWTGUARD_DPOP_ORIGINS=" http://api,https://api.example "),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flask = subprocess.Popen(
        [sys.executable, str(FLASK_SERVER)],
        env=dict(env, PORT=str(flask_port), PYTHONPATH=str(ROOT / "bindings" / "python" / "src")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        c_base, flask_base = f"http://127.0.0.1:{c_port}", f"http://127.0.0.1:{flask_port}"
        wait_up(c_base, c_server, "the C ping server")
        wait_up(flask_base, flask, "the Flask example")
        plain = issuer.token("openid")
        tokens = {
            "none": None,
            "plain": plain,
            "scoped": issuer.token("read:messages"),
            "expired": issuer.token("read:messages", expires_in=-300),
            "tampered": tamper(plain),
            **OTHER_SCHEMES,
            "garbage": "not-a-jwt",
        }
        for (route, kind), (status, code) in EXPECTED.items():
            token = tokens[kind]
            headers = {}
            if kind in OTHER_SCHEMES:
                headers["Authorization"] = token
            elif token is not None:
                headers["Authorization"] = f"Bearer {token}"
            c_answer = http("GET", c_base + route, headers=headers)
            flask_answer = http("GET", flask_base + route, headers=headers)
            for name, (got_status, got_headers, body) in (("C", c_answer), ("Flask", flask_answer)):
                assert got_status == status, (name, route, kind, body)
                if code is None:
                    assert body["message"].startswith("Hello from a "), (name, route, kind)
                else:
                    assert body["code"] == code, (name, route, kind, body)
            if code is not None:
                assert c_answer[2] == flask_answer[2], (route, kind)
                assert c_answer[1]["WWW-Authenticate"] == flask_answer[1]["WWW-Authenticate"], (route, kind)
            if kind in OTHER_SCHEMES:
                assert "error=" not in c_answer[1]["WWW-Authenticate"], (kind, c_answer[1])
        # DPoP (jwt_verify_request) and the malformed requests, under the checker too.
        client = DpopClient("ES256")
        bound = (client, client.token_from(issuer.url).encode(), client.token_from(issuer.url, "openid").encode())
        assert_hosts_agree({"C": c_port, "Flask": flask_port},
                           host_cases(tokens["scoped"].encode(), plain.encode(), bound))
        # A Host that is not host[:port] never makes a proof for another URL acceptable.
        token = bound[1].decode()
        for host, htu in (("rs2.example/x/y#", "http://rs2.example/x/y"), ("api?", "http://api/"),
                          ("api/api/private?", "http://api/api/private")):
            request_line = request_bytes(b"/api/private", b"Authorization: DPoP " + bound[1],
                                         b"DPoP: " + client.proof(url=htu, token=token).encode())
            status, _, body = raw_request(c_port, request_line.replace(b"Host: api", b"Host: " + host.encode()))
            assert (status, json.loads(body)["code"]) == (401, "invalid_dpop_proof"), (host, body)
        # With the origins pinned, a proof for the URL a spoofed Host names is refused
        # (review 3, item 17); the pinned origin passes (the host cases' DPoP valid).
        for host in ("evil.example", "api:8080", "API.example"):
            request_line = request_bytes(b"/api/private", b"Authorization: DPoP " + bound[1], b"DPoP: " + client.proof(
                url=f"http://{host}/api/private", token=token).encode())
            status, _, body = raw_request(c_port, request_line.replace(b"Host: api", b"Host: " + host.encode()))
            assert (status, json.loads(body)["description"]) == (401, "DPoP proof is for another URL (htu)"), host
        request_line = request_bytes(b"/api/private", b"Authorization: DPoP " + bound[1], b"DPoP: " + client.proof(
            url="http://api:80/api/private", token=token).encode())
        assert raw_request(c_port, request_line.replace(b"Host: api", b"Host: API:80"))[0] == 200
        # Two Authorization lines are malformed even when one is empty (review 3, item 16).
        good = b"Authorization: Bearer " + tokens["scoped"].encode()
        for lines in ((good, b"Authorization: "), (b"Authorization:", good)):
            status, head, body = raw_request(c_port, request_bytes(b"/api/private", *lines))
            assert (status, json.loads(body)["code"]) == (400, "invalid_header"), (lines, body)
            assert 'error="invalid_request"' in head["www-authenticate"][0]
    finally:
        flask.terminate()
        flask.wait(timeout=10)
        c_server.send_signal(signal.SIGTERM)
        try:
            _, report = c_server.communicate(timeout=60)
        finally:
            issuer.stop()
    assert c_server.returncode == 0, report


def start_plain(issuer_url: str, **env) -> tuple[subprocess.Popen, int]:
    port = free_port()
    environment = dict(os.environ, JWTGUARD_ISSUER=issuer_url, JWTGUARD_AUDIENCE=AUDIENCE, PORT=str(port), **env)
    for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI"):
        environment.pop(key, None)
    process = subprocess.Popen([str(PING_SERVER)], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    return process, port


def test_a_bad_dpop_origin_stops_the_server_with_a_message():
    for origins in ("https://api.example/v1", "api.example", "http://api,ftp://x"):
        process, _ = start_plain("http://127.0.0.1:1/", JWTGUARD_DPOP_ORIGINS=origins)
        _, error = process.communicate(timeout=30)
        assert process.returncode == 1, (origins, error)
        assert "JWTGUARD_DPOP_ORIGINS" in error and "ping_server: invalid configuration" in error, error


@pytest.mark.parametrize("checker", ["plain", "asan"])
def test_the_proof_url_port_is_the_servers_unless_origins_are_pinned(checker, request):
    """Review 3, items 2 and 17 (as nginx, b4591fb): a server listens on its port, whatever
    port a client writes in Host. Two servers on P1 and P2 for one name, each with its own
    verifier and replay cache: a proof used at P2 must not be good again at P1 with
    `Host: api.example:P2`. Unpinned, the URL's port is the server's, which Host must name
    (none: 80); with JWTGUARD_DPOP_ORIGINS, Host's port is taken as sent (port mapping)."""
    issuer = DevIssuer()
    binary = PING_SERVER if checker == "plain" else request.getfixturevalue("asan_server")
    client = DpopClient("ES256")
    token = client.token_from(issuer.url)
    mismatch, replayed = "DPoP proof is for another URL (htu)", "DPoP proof was already used (jti)"
    started = []

    def start(**env) -> int:
        port = free_port()
        environment = dict(os.environ, JWTGUARD_ISSUER=issuer.url, JWTGUARD_AUDIENCE=AUDIENCE, PORT=str(port), **env)
        for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI"):
            environment.pop(key, None)
        if "JWTGUARD_DPOP_ORIGINS" not in env:
            environment.pop("JWTGUARD_DPOP_ORIGINS", None)
        process = subprocess.Popen([str(binary)], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True)
        started.append(process)
        wait_up(f"http://127.0.0.1:{port}", process, "the C ping server")
        return port

    def call(port: int, host: str, proof: str) -> tuple[int, str]:
        status, _, body = raw_request(port, request_bytes(
            b"/api/private", b"Authorization: DPoP " + token.encode(), b"DPoP: " + proof.encode(),
        ).replace(b"Host: api", b"Host: " + host.encode()))
        return status, json.loads(body).get("description", "ok") if status != 200 else "ok"

    def proof(url: str) -> str:
        return client.proof(url=url, token=token)

    try:
        p1, p2 = start(), start()
        used = proof(f"http://api.example:{p2}/api/private")
        assert call(p2, f"api.example:{p2}", used) == (200, "ok")
        assert call(p2, f"api.example:{p2}", used) == (401, replayed)
        assert call(p1, f"api.example:{p2}", used) == (401, mismatch)
        assert call(p1, f"api.example:{p2}", proof(f"http://api.example:{p2}/api/private")) == (401, mismatch)
        assert call(p1, "api.example", proof("http://api.example/api/private")) == (401, mismatch)
        assert call(p1, "api.example:", proof("http://api.example/api/private")) == (401, mismatch)
        assert call(p1, f"[::1]:{p2}", proof(f"http://[::1]:{p2}/api/private")) == (401, mismatch)
        assert call(p1, f"api.example:{p1}", proof(f"http://api.example:{p1}/api/private")) == (200, "ok")
        assert call(p1, f"[::1]:{p1}", proof(f"http://[::1]:{p1}/api/private")) == (200, "ok")
        # Pinned to a public origin on another port than the server's: its proofs pass.
        p3 = start(JWTGUARD_DPOP_ORIGINS="http://api.example:8443")
        assert call(p3, "api.example:8443", proof("http://api.example:8443/api/private")) == (200, "ok")
        assert call(p3, f"api.example:{p3}", proof(f"http://api.example:{p3}/api/private")) == (401, mismatch)
    finally:
        for process in started:
            process.send_signal(signal.SIGTERM)
        reports = [process.communicate(timeout=60)[1] for process in started]
        issuer.stop()
    assert [process.returncode for process in started] == [0] * len(started), reports


def test_what_libmicrohttpd_decides_before_the_server():
    """Review 3, item 16: what libmicrohttpd 0.9.75 (Debian 12) does to an Authorization line
    before the server reads it (the README states it; this says when it stops being true). A
    value is a C string there: a NUL ends it and the bytes after it are lost, so a valid token
    followed by NUL and anything passes. A bare LF ends the line. Other control bytes (DEL,
    0x01) and a bare CR reach the library, which refuses the header as malformed (400)."""
    issuer = DevIssuer()
    process, port = start_plain(issuer.url)
    try:
        wait_up(f"http://127.0.0.1:{port}", process, "the C ping server")
        token = issuer.token().encode()
        for value, want in ((token + b"\x00junk", 200), (token + b"\nX-Other: y", 200),
                            (token[:20] + b"\x00" + token[20:], 401),
                            (token + b"\x7f", 400), (token + b"\x01", 400), (token[:20] + b"\r" + token[20:], 400)):
            status, _, body = raw_request(port, request_bytes(b"/api/private", b"Authorization: Bearer " + value))
            assert status == want, (value[-12:], body)
            if want == 400:
                assert json.loads(body)["code"] == "invalid_header"
    finally:
        process.terminate()
        process.wait(timeout=10)
        issuer.stop()
