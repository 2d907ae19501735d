"""DPoP (RFC 9449) proofs and key thumbprints made independently of jwtguard (PyJWT +
cryptography + hashlib), for every suite that checks DPoP."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from harness import AUDIENCE, http

# The URL a request built by harness.request_bytes addresses (Host: api, plain HTTP).
URL = "http://api/api/private"
SCOPED_URL = "http://api/api/private-scoped"

# What a default verifier puts in a DPoP challenge's algs.
ALGS = "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA Ed25519"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def ath(token: str) -> str:
    """base64url(SHA-256(token)), computed here."""
    return b64(hashlib.sha256(token.encode("ascii")).digest())


def challenge(realm: str = "api", bearer: str = "", dpop: str = "") -> str:
    """The challenge of a verifier with DPoP allowed: `bearer` and `dpop` are the attributes
    (", error=...") each scheme carries."""
    return f'Bearer realm="{realm}"{bearer}, DPoP realm="{realm}", algs="{ALGS}"{dpop}'


# What a request without credentials is answered (DPoP allowed, the default): both schemes.
NO_TOKEN_CHALLENGE = challenge()


def error(code: str, description: str) -> str:
    return f', error="{code}", error_description="{description}"'


class DpopClient:
    """A client's key pair and the proofs it signs."""

    def __init__(self, alg: str = "ES256"):
        self.alg = alg
        if alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
        else:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = json.loads(pyjwt.get_algorithm_by_name(alg).to_jwk(self.key.public_key()))
        for extra in ("kid", "alg", "use", "key_ops"):
            self.jwk.pop(extra, None)

    def jkt(self) -> str:
        """The RFC 7638 thumbprint, computed here: required members, sorted, no spaces."""
        required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
        members = {name: self.jwk[name] for name in required[self.jwk["kty"]]}
        canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
        return b64(hashlib.sha256(canonical.encode()).digest())

    def proof(self, method: str = "GET", url: str = URL, token: str | None = None,
              headers: dict | None = None, key=None, **claims) -> str:
        """A proof over method and url (and `ath` of `token`); `claims` and `headers` change or
        (given None) remove members; `key` signs instead of the client's key."""
        body = {"jti": str(uuid.uuid4()), "htm": method, "htu": url, "iat": int(time.time())}
        if token is not None:
            body["ath"] = ath(token)
        for name, value in claims.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        head = {"typ": "dpop+jwt", "jwk": self.jwk}
        for name, value in (headers or {}).items():
            if value is None:
                head.pop(name, None)
            else:
                head[name] = value
        return pyjwt.encode(body, key if key is not None else self.key, algorithm=self.alg, headers=head)

    def token_from(self, issuer_url: str, scope: str = "read:messages") -> str:
        """A DPoP-bound token from a dev issuer, asked for with a proof (as a real client does)."""
        endpoint = issuer_url + "oauth/token"
        body = json.dumps({"audience": AUDIENCE, "scope": scope}).encode()
        status, _, answer = http("POST", endpoint, body, {
            "Content-Type": "application/json",
            "DPoP": self.proof("POST", endpoint),
        })
        assert status == 200, answer
        assert answer["token_type"] == "DPoP", answer
        return answer["access_token"]
