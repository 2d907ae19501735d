"""Tokens minted independently of jwtguard (PyJWT + cryptography), with their public keys
served as a JWKS on loopback: for the Python and nginx suites."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import AUDIENCE, MINTED_ISSUER


class Minter:
    """Keys and tokens made with PyJWT + cryptography, independently of jwtguard, with their
    public keys served as a JWKS on loopback."""

    def __init__(self):
        self.keys = {
            "RS256": ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "PS256": ("rsa", None),
            "ES256": ("ec", ec.generate_private_key(ec.SECP256R1())),
            "EdDSA": ("ed", ed25519.Ed25519PrivateKey.generate()),
        }
        self.keys["PS256"] = ("rsa", self.keys["RS256"][1])
        jwks = []
        for kid, alg in (("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")):
            public = self.keys[alg][1].public_key()
            algorithm = pyjwt.get_algorithm_by_name(alg)
            jwk = json.loads(algorithm.to_jwk(public))
            jwk.update({"kid": kid, "use": "sig"})
            jwks.append(jwk)
        self.jwks = {"keys": jwks}
        body = json.dumps(self.jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_uri = f"http://127.0.0.1:{self.server.server_port}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def claims(self, **changes):
        now = int(time.time())
        claims = {
            "iss": MINTED_ISSUER,
            "sub": "client-1@clients",
            "aud": AUDIENCE,
            "iat": now - 5,
            "exp": now + 600,
            "scope": "read:messages",
            "client_id": "client-1",
            "jti": "j-1",
        }
        for key, value in changes.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return claims

    def token(self, alg: str = "RS256", headers: dict | None = None, **changes) -> str:
        kid, key = self.keys[alg]
        head = {"kid": kid, "typ": "at+jwt"}
        head.update(headers or {})
        return pyjwt.encode(self.claims(**changes), key, algorithm=alg, headers=head)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
