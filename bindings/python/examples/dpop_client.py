"""A DPoP client (RFC 9449), as an API's caller would be: one P-256 key pair, an access token
bound to it (asked for with a proof, as real issuers require), and a fresh proof for every call.
Signing is the client's side, so it uses PyJWT and cryptography, not jwtguard.

As a program it prints shell assignments for a curl call (README, "DPoP"):

    eval "$(python dpop_client.py ISSUER_URL AUDIENCE GET http://127.0.0.1:3020/api/private)"
    curl -H "Authorization: DPoP $TOKEN" -H "DPoP: $PROOF" http://127.0.0.1:3020/api/private
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import time
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


class DpopClient:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        self.jwk = {name: public[name] for name in ("kty", "crv", "x", "y")}

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        """A proof for one request: its method and URL (the query is not part of htu), and the
        hash of the access token it goes with."""
        claims = {"jti": str(uuid.uuid4()), "htm": method, "htu": url.split("?")[0], "iat": int(time.time())}
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            claims["ath"] = jwt.utils.base64url_encode(digest).decode("ascii")
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})

    def token(self, issuer: str, audience: str, scope: str = "read:messages") -> str:
        """An access token bound to this client's key (its cnf.jkt), from the issuer's token
        endpoint (`jwtguard dev-issuer` binds a token when the request carries a proof)."""
        endpoint = issuer.rstrip("/") + "/oauth/token"
        body = json.dumps({"audience": audience, "scope": scope}).encode()
        request = urllib.request.Request(endpoint, data=body, method="POST", headers={
            "Content-Type": "application/json", "DPoP": self.proof("POST", endpoint)})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            answer = json.loads(response.read())
        if answer.get("token_type") != "DPoP":
            raise RuntimeError(f"the issuer did not bind the token: {answer.get('token_type')}")
        return answer["access_token"]


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    issuer, audience, method, url = argv[1:]
    client = DpopClient()
    token = client.token(issuer, audience)
    print(f"TOKEN={shlex.quote(token)}")
    print(f"PROOF={shlex.quote(client.proof(method, url, token))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
