"""Fixtures for the forward-auth suite: `jwtguard serve` as a real process with two issuers (a
real `jwtguard dev-issuer` and the PyJWT minter's loopback JWKS), and the real proxies that
ask it: Debian's nginx (auth_request), Envoy 1.40 from PyPI (ext_authz), Debian's Caddy."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fixtures import issuer, minter  # noqa: E402,F401 (fixtures)
from harness import AUDIENCE, JWTGUARD_BIN, MINTED_ISSUER, DevIssuer, http  # noqa: E402,F401

PROXIES = ROOT / "bindings" / "proxies"


def serve_config(issuer_url: str, minter_jwks: str, extra: str = "") -> str:
    """The shipped example's routes and claims, on free ports, with issuer A (the dev issuer,
    by discovery) and issuer B (the minter, by its JWKS URL, ES256 and RS256)."""
    text = (PROXIES / "jwtguard-serve.toml").read_text()
    text = text.replace('listen = "127.0.0.1:9191"', 'listen = "127.0.0.1:0"')
    text = text.replace('admin_listen = "127.0.0.1:9192"', 'admin_listen = "127.0.0.1:0"')
    text = text.replace('issuer = "http://127.0.0.1:8080/"', f'issuer = "{issuer_url}"')
    issuer_b = (f'\n[[issuer]]\nissuer = "{MINTED_ISSUER}"\naudience = "{AUDIENCE}"\n'
                f'jwks_uri = "{minter_jwks}"\nalgorithms = ["ES256", "RS256"]\n')
    # Tables after [forward_claims] would belong to it: the second issuer goes before.
    text = text.replace("[[route]]", issuer_b + "\n[[route]]", 1)
    return text + extra


class Serve:
    """`jwtguard serve --config FILE` in the background; `port` and `admin` from its first
    line of stdout."""

    def __init__(self, config: str, *args: str, expect_start: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="jwtguard-serve-"))
        self.config = self.dir / "serve.toml"
        self.config.write_text(config)
        self.log_path = self.dir / "stderr.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([JWTGUARD_BIN, "serve", "--config", str(self.config), *args],
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        if not expect_start:
            return
        first = self.process.stdout.readline()
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+) \(admin http://127\.0\.0\.1:(\d+)\)", first)
        assert found, f"serve said {first!r}: {self.stderr()}"
        self.port, self.admin = int(found.group(1)), int(found.group(2))
        self.base = f"http://127.0.0.1:{self.port}"

    def check(self, path: str = "/", token: str | None = None, method: str = "GET", headers: dict | None = None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return http(method, self.base + path, headers=all_headers)

    def admin_get(self, path: str):
        return http("GET", f"http://127.0.0.1:{self.admin}{path}")

    def metrics(self) -> dict[str, float]:
        text = self.admin_get("/metrics")[2]
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def wait_ready(self, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while self.admin_get("/readyz")[0] != 200:
            assert time.monotonic() < deadline, "serve never became ready"
            time.sleep(0.05)

    def stderr(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("serve did not stop on SIGTERM")
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.process.returncode


@pytest.fixture(scope="session")
def serve(issuer, minter):
    s = Serve(serve_config(issuer.url, minter.jwks_uri))
    s.wait_ready()
    yield s
    assert s.stop() == 0
