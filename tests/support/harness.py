"""Test harness shared by the Python and nginx suites: paths to the built artifacts, a real
`jwtguard dev-issuer` process, and plain HTTP calls over loopback (no proxies)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
os.environ.setdefault("JWTGUARD_LIBRARY", str(TARGET / "libjwtguard.so"))
JWTGUARD_BIN = os.environ.get("JWTGUARD_BIN", str(TARGET / "jwtguard"))
sys.path.insert(0, str(ROOT / "bindings" / "python" / "src"))

AUDIENCE = "https://api.example"
MINTED_ISSUER = "https://tenant.example/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON or text) of one request; never raises on HTTP errors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, error.headers, error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw.decode("utf-8", "replace")


class DevIssuer:
    """`jwtguard dev-issuer --admin` as a real process."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [JWTGUARD_BIN, "dev-issuer", "--admin", "--audience", AUDIENCE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url
        self.jwks_uri = self.url + ".well-known/jwks.json"

    def token(self, scope: str = "read:messages", expires_in: int = 3600) -> str:
        body = json.dumps({"audience": AUDIENCE, "scope": scope, "expires_in": expires_in}).encode()
        status, _, answer = http("POST", self.url + "oauth/token", body, {"Content-Type": "application/json"})
        assert status == 200, answer
        return answer["access_token"]

    def rotate(self, retire: bool = False) -> str:
        body = json.dumps({"retire": retire}).encode()
        return http("POST", self.url + "admin/rotate", body, {"Content-Type": "application/json"})[2]["kid"]

    def fault(self, **fault) -> None:
        body = json.dumps(fault).encode()
        status, _, answer = http("POST", self.url + "admin/fault", body, {"Content-Type": "application/json"})
        assert status == 200, answer

    def jwks_requests(self) -> int:
        return http("GET", self.url + "admin/stats")[2]["jwks_requests"]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


