"""The example ping API (examples/flask_api/server.py) as a real server process, configured
from the environment against a real dev issuer, called over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import AUDIENCE, ROOT, free_port, http

SERVER = ROOT / "bindings" / "python" / "examples" / "flask_api" / "server.py"


@pytest.fixture(scope="module")
def api(issuer):
    port = free_port()
    env = dict(os.environ)
    env.update(
        JWTGUARD_ISSUER=issuer.url,
        JWTGUARD_AUDIENCE=AUDIENCE,
        PORT=str(port),
        PYTHONPATH=str(ROOT / "bindings" / "python" / "src"),
    )
    for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI"):
        env.pop(key, None)
    process = subprocess.Popen([sys.executable, str(SERVER)], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if http("GET", base + "/api/public")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the example API did not start: " + (process.stderr.read() if process.stderr else ""))
        time.sleep(0.1)
    yield base
    process.terminate()
    process.communicate(timeout=10)  # and its stderr pipe closed


def tamper(token: str) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:messages admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def get(base: str, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http("GET", base + path, headers=headers)


def test_public(api):
    status, _, body = get(api, "/api/public")
    assert status == 200
    assert body["message"].startswith("Hello from a public endpoint!")


def test_private(api, issuer):
    assert get(api, "/api/private")[0] == 401
    assert get(api, "/api/private")[2]["code"] == "authorization_header_missing"
    status, _, body = get(api, "/api/private", issuer.token(scope=""))
    assert status == 200
    assert body["message"].startswith("Hello from a private endpoint!")


def test_private_scoped(api, issuer):
    status, headers, body = get(api, "/api/private-scoped", issuer.token(scope="openid"))
    assert (status, body["code"]) == (403, "Unauthorized")
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    status, _, body = get(api, "/api/private-scoped", issuer.token(scope="read:messages"))
    assert status == 200
    assert body == {
        "message": "Hello from a private endpoint! You need to be authenticated and have a scope of "
        "read:messages to see this."
    }


def test_expired_and_tampered(api, issuer):
    status, headers, body = get(api, "/api/private", issuer.token(expires_in=-120))
    assert (status, body["code"]) == (401, "token_expired")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, _, body = get(api, "/api/private-scoped", tamper(issuer.token(scope="openid")))
    assert (status, body["code"]) == (401, "invalid_token")


def test_example_files_exist():
    folder = SERVER.parent
    assert (folder / ".env.example").exists()
    assert "flask" in (folder / "requirements.txt").read_text()
    assert Path(SERVER).read_text().count("@requires_") == 2
