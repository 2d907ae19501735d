"""The ping API on FastAPI (uvicorn) and on Django (its own server), each started as
`python server.py` from the environment like the Flask example, against one real dev issuer:
every request — missing, plain, scoped, expired, forged and malformed tokens, repeated
headers, unknown paths and methods — gets the same status, JSON body and `WWW-Authenticate`
from both as from the Flask example. Then what the integrations add: FastAPI's OpenAPI
document declares the bearer scheme on the protected routes, a FastAPI app waits for keys
without blocking its event loop, and Django's decorators refuse a view without the
middleware."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AUDIENCE, ROOT, DevIssuer, free_port, http

sys.path.insert(0, str(ROOT / "tests" / "support"))
from harness import raw_request  # noqa: E402

EXAMPLES = ROOT / "bindings" / "python" / "examples"
SERVERS = {
    "flask": EXAMPLES / "flask_api" / "server.py",
    "fastapi": EXAMPLES / "fastapi_api" / "server.py",
    "django": EXAMPLES / "django_api" / "server.py",
}


def spawn(name: str, issuer_url: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, JWTGUARD_ISSUER=issuer_url, JWTGUARD_AUDIENCE=AUDIENCE, PORT=str(port),
               PYTHONPATH=str(ROOT / "bindings" / "python" / "src"))
    for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI"):
        env.pop(key, None)
    process = subprocess.Popen([sys.executable, str(SERVERS[name])], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    return process, port


def wait_up(name: str, process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if http("GET", f"http://127.0.0.1:{port}/api/public")[0] == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the {name} example did not start: {process.communicate()[1]}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def servers():
    issuer = DevIssuer()
    started = {name: spawn(name, issuer.url) for name in SERVERS}
    for name, (process, port) in started.items():
        wait_up(name, process, port)
    yield issuer, {name: port for name, (_, port) in started.items()}
    for process, _ in started.values():
        process.terminate()
        process.communicate(timeout=10)
    issuer.stop()


def forged(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:messages"
    return f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{sig}"


def request(path: str, *headers: str, method: str = "GET") -> bytes:
    lines = "".join(h + "\r\n" for h in headers)
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}Connection: close\r\n\r\n".encode("latin-1")


def cases(issuer: DevIssuer) -> dict[str, tuple[bytes, int, str | None]]:
    """name: (raw request, status, JSON code or None for a message)."""
    plain, scoped = issuer.token("openid"), issuer.token("read:messages")
    expired = issuer.token("read:messages", expires_in=-300)
    return {
        "public": (request("/api/public"), 200, None),
        "public with garbage token": (request("/api/public", "Authorization: Bearer nope"), 200, None),
        "private without token": (request("/api/private"), 401, "authorization_header_missing"),
        "private plain": (request("/api/private", f"Authorization: Bearer {plain}"), 200, None),
        "private lowercase scheme": (request("/api/private", f"Authorization: bearer {plain}"), 200, None),
        "private expired": (request("/api/private", f"Authorization: Bearer {expired}"), 401, "token_expired"),
        "private forged": (request("/api/private", f"Authorization: Bearer {forged(plain)}"), 401, "invalid_token"),
        "private basic": (request("/api/private", "Authorization: Basic dXNlcjpwYXNz"), 401, "invalid_header"),
        "private token scheme": (request("/api/private", "Authorization: Token x"), 401, "invalid_header"),
        "private bare bearer": (request("/api/private", "Authorization: Bearer"), 400, "invalid_header"),
        "private garbage": (request("/api/private", "Authorization: Bearer not-a-jwt"), 401, "invalid_header"),
        "private two tokens": (request("/api/private", f"Authorization: Bearer {plain} {plain}"), 400, "invalid_header"),
        "private two headers": (request("/api/private", f"Authorization: Bearer {plain}",
                                        f"Authorization: Bearer {scoped}"), 400, "invalid_header"),
        "private high byte": (request("/api/private", f"Authorization: Bearer {plain}\xe9"), 400, "invalid_header"),
        "scoped plain": (request("/api/private-scoped", f"Authorization: Bearer {plain}"), 403, "Unauthorized"),
        "scoped ok": (request("/api/private-scoped", f"Authorization: Bearer {scoped}"), 200, None),
        "scoped forged": (request("/api/private-scoped", f"Authorization: Bearer {forged(plain)}"), 401, "invalid_token"),
        "scoped without token": (request("/api/private-scoped"), 401, "authorization_header_missing"),
        "unknown path": (request("/api/nothing"), 404, "not_found"),
        "wrong method": (request("/api/private", f"Authorization: Bearer {plain}", method="DELETE"), 405,
                         "method_not_allowed"),
    }


@pytest.mark.parametrize("name", ["fastapi", "django"])
def test_answers_match_the_flask_example(servers, name):
    issuer, ports = servers
    for case, (raw, status, code) in cases(issuer).items():
        answers = {}
        for host in ("flask", name):
            got_status, headers, body = raw_request(ports[host], raw)
            answers[host] = (got_status, headers.get("www-authenticate"), body)
            assert got_status == status, (host, case, body)
            parsed = json.loads(body)
            if code is None:
                assert parsed["message"].startswith("Hello from a "), (host, case, parsed)
            else:
                assert parsed["code"] == code, (host, case, parsed)
                assert set(parsed) == {"code", "description"}, (host, case, parsed)
        flask, other = answers["flask"], answers[name]
        # The same bytes, as `make demo` requires of every host.
        assert other[2] == flask[2], (case, other[2], flask[2])
        assert other[1] == flask[1], (case, other[1], flask[1])
        if status == 403:
            assert 'error="insufficient_scope"' in answers[name][1][0]
            assert 'scope="read:messages"' in answers[name][1][0]


def test_fastapi_openapi_declares_the_bearer_scheme(servers):
    _, ports = servers
    status, _, document = http("GET", f"http://127.0.0.1:{ports['fastapi']}/openapi.json")
    assert status == 200
    scheme = document["components"]["securitySchemes"]["jwtguard"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["bearerFormat"] == "JWT"
    paths = document["paths"]
    assert paths["/api/private"]["get"]["security"] == [{"jwtguard": []}]
    # (the scopes a route requires are listed, as OpenAPI allows for any scheme since 3.1)
    assert paths["/api/private-scoped"]["get"]["security"] == [{"jwtguard": ["read:messages"]}]
    assert "security" not in paths["/api/public"]["get"]


def test_fastapi_waits_for_keys_without_blocking_the_event_loop():
    """A cold verifier against a slow issuer: the request awaits the keys while the loop keeps
    running (a ticker every 10 ms), then succeeds; against an issuer that fails, the refusal
    is 503 with Retry-After once the fetch has failed."""
    from jwtguard.fastapi import JWTGuard, Refused

    async def with_ticker(auth, authorization):
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        started = time.monotonic()
        try:
            return await auth.authenticate(FakeRequest(authorization)), ticks, time.monotonic() - started
        except Refused as refused:
            return refused, ticks, time.monotonic() - started
        finally:
            task.cancel()

    slow, failing = DevIssuer(), DevIssuer()
    try:
        token = slow.token("read:messages")
        slow.fault(mode="delay", ms=1000)
        auth = JWTGuard(issuer=slow.url, audience=AUDIENCE, jwks_uri=slow.url + ".well-known/jwks.json")
        claims, ticks, elapsed = asyncio.run(with_ticker(auth, f"Bearer {token}"))
        assert isinstance(claims, dict) and claims["iss"] == slow.url, claims
        # Blocked for the fetch, the loop would tick once or twice; awaiting in 20 ms steps, it
        # ticks all along (about every 10 ms on an idle machine, fewer on a loaded one).
        assert elapsed >= 0.8 and ticks >= 8, (elapsed, ticks)
        auth.close()

        token = failing.token("read:messages")
        failing.fault(mode="status", status=500)
        cold = JWTGuard(issuer=failing.url, audience=AUDIENCE, jwks_uri=failing.url + ".well-known/jwks.json",
                        key_wait=2)
        refused, _, elapsed = asyncio.run(with_ticker(cold, f"Bearer {token}"))
        assert isinstance(refused, Refused), refused
        assert refused.status_code == 503 and refused.error.reason == "keys_unavailable", refused.body
        assert refused.headers["Retry-After"] == "5" and set(refused.body) == {"code", "description"}
        assert elapsed < 4, elapsed  # within key_wait (2 s) and its last step
        cold.close()
    finally:
        slow.stop()
        failing.stop()


def test_fastapi_guards_never_answer_for_each_other(servers):
    """Two guards on one request (say a router's and a route's, for different audiences): a
    token the first accepted is verified again by the second, under its own audience; claims
    someone else put on request.state stand in for nothing; key_wait must be a real bound."""
    from jwtguard.fastapi import JWTGuard, Refused

    issuer, _ = servers
    jwks_uri = issuer.url + ".well-known/jwks.json"
    users = JWTGuard(issuer=issuer.url, audience=AUDIENCE, jwks_uri=jwks_uri)
    admins = JWTGuard(issuer=issuer.url, audience="https://admin.example", jwks_uri=jwks_uri)
    request = FakeRequest(f"Bearer {issuer.token('read:messages')}")

    async def both():
        claims = await users.authenticate(request)
        try:
            await admins.authenticate(request)
        except Refused as refused:
            return claims, refused
        return claims, None

    claims, refused = asyncio.run(both())
    assert claims["aud"] == AUDIENCE
    assert refused is not None and refused.error.reason == "audience_invalid", refused
    assert asyncio.run(users.authenticate(request)) is claims  # its own, kept for the request

    planted = FakeRequest(None)
    planted.state.jwt_claims = {"sub": "admin", "aud": AUDIENCE, "scope": "read:messages"}
    try:
        asyncio.run(users.authenticate(planted))
        raise AssertionError("planted claims were accepted")
    except Refused as refused:
        assert refused.error.reason == "token_missing"
    for bad in (float("inf"), float("nan"), -1, 61):
        with pytest.raises(ValueError):
            JWTGuard(issuer=issuer.url, audience=AUDIENCE, key_wait=bad)
    users.close()
    admins.close()


class FakeRequest:
    """What JWTGuard.authenticate reads of a Starlette request."""

    def __init__(self, authorization: str | None):
        self.headers = _Headers({"authorization": [authorization]} if authorization else {})
        self.state = type("State", (), {})()
        self.method = "GET"
        self.headers.values["host"] = ["api"]
        self.scope = {"type": "http", "scheme": "http", "path": "/api/private", "raw_path": b"/api/private",
                      "root_path": ""}


class _Headers:
    def __init__(self, values):
        self.values = values

    def getlist(self, name):
        return self.values.get(name, [])

    def get(self, name, default=None):
        values = self.values.get(name)
        return ", ".join(values) if values else default


def test_django_decorator_without_the_middleware_is_a_configuration_error(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(JWTGUARD={'ISSUER': 'https://issuer.example/', 'AUDIENCE': 'a'}, ALLOWED_HOSTS=['*'])\n"
        "django.setup()\n"
        "from django.core.exceptions import ImproperlyConfigured\n"
        "from django.test import RequestFactory\n"
        "from jwtguard.django import requires_auth\n"
        "view = requires_auth(lambda request: 'reached')\n"
        "try:\n"
        "    view(RequestFactory().get('/'))\n"
        "except ImproperlyConfigured as error:\n"
        "    print('refused:', error)\n"
        "import asyncio\n"
        "from jwtguard.django import JWTGuardMiddleware, requires_scope\n"
        "@requires_scope('read:messages')\n"
        "async def scoped(request):\n"
        "    return 'reached'\n"
        "guard = JWTGuardMiddleware(lambda request: None)\n"
        "request = RequestFactory().get('/')\n"
        "guard(request)\n"
        "request.jwt_claims = {'sub': 'planted', 'scope': 'read:messages'}\n"
        "answer = asyncio.run(scoped(request))\n"
        "print('async:', answer.status_code, answer.content.decode().strip())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bindings" / "python" / "src"))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert "refused: jwtguard.django: add 'jwtguard.django.JWTGuardMiddleware' to MIDDLEWARE" in out.stdout, out
    # An async view is guarded (not handed an unawaited coroutine), and claims planted on the
    # request stand in for no verification.
    assert 'async: 401 {"code":"authorization_header_missing",' in out.stdout, out


def test_example_folders():
    for name, server in SERVERS.items():
        folder = server.parent
        assert (folder / ".env.example").exists(), name
        assert (folder / "requirements.txt").exists(), name
    assert Path(SERVERS["fastapi"]).read_text().count("Depends(auth)") == 1
    assert Path(SERVERS["django"]).read_text().count("@requires_") == 2
