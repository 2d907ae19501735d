"""An OpenID issuer on loopback made independently of jwtguard (PyJWT), for the suites that
need one whose key a test holds."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec

from harness import AUDIENCE


class DiscoveryMinter:
    """An OpenID issuer on loopback made independently of jwtguard (PyJWT): its discovery
    document names it and its JWKS, and it signs whatever claims a test asks for, another
    issuer's `iss` included (a forged token)."""

    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(pyjwt.get_algorithm_by_name("ES256").to_jwk(self.key.public_key()))
        jwk.update({"kid": "minted-ec", "use": "sig"})
        documents: dict[str, bytes] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = documents.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        documents["/.well-known/openid-configuration"] = json.dumps(
            {"issuer": self.url, "jwks_uri": self.url + "jwks.json"}).encode()
        documents["/jwks.json"] = json.dumps({"keys": [jwk]}).encode()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, iss: str | None = None, **claims) -> str:
        now = int(time.time())
        body = {"iss": iss or self.url, "sub": "minted", "aud": AUDIENCE, "iat": now, "exp": now + 600,
                "scope": "read:messages", **claims}
        return pyjwt.encode(body, self.key, algorithm="ES256", headers={"kid": "minted-ec", "typ": "at+jwt"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
