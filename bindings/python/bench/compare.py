"""Verify the same RS256 access token with jwtguard, PyJWT (key parsed once), python-jose (the
quickstart's library) and joserfc, each checking signature, exp, iss and aud, and print
verifications per second and ratios. Not a test; run with `make bench-python`.

    python bench/compare.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import time

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import rsa

import jwtguard

ISSUER = "https://tenant.example/"
AUDIENCE = "https://api.example"


def rate(name: str, verify, seconds: float) -> float:
    verify()  # warm up, and fail loudly if the token is refused
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            verify()
        count += 100
    per_second = count / (time.perf_counter() - start)
    print(f"{name:<34} {per_second:>10,.0f} /s")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(public))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 3600, "scope": "read:messages"}
    token = pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})

    results = {}
    verifier = jwtguard.Verifier(ISSUER, AUDIENCE, jwks={"keys": [jwk]})
    results["jwtguard (ctypes)"] = rate("jwtguard (ctypes)", lambda: verifier.verify(token), args.seconds)

    results["PyJWT (key pre-parsed)"] = rate(
        "PyJWT (key pre-parsed)",
        lambda: pyjwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER),
        args.seconds,
    )

    from jose import jwt as jose_jwt

    results["python-jose (quickstart)"] = rate(
        "python-jose (quickstart)",
        lambda: jose_jwt.decode(token, {"keys": [jwk]}, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER),
        args.seconds,
    )

    from joserfc import jwt as joserfc_jwt
    from joserfc.jwk import RSAKey

    rfc_key = RSAKey.import_key(jwk)
    registry = joserfc_jwt.JWTClaimsRegistry(iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": AUDIENCE})

    def joserfc_verify():
        decoded = joserfc_jwt.decode(token, rfc_key, algorithms=["RS256"])
        registry.validate(decoded.claims)

    results["joserfc"] = rate("joserfc", joserfc_verify, args.seconds)

    base = results["jwtguard (ctypes)"]
    print()
    for name, value in results.items():
        print(f"jwtguard / {name:<28} {base / value:>6.2f}x")


if __name__ == "__main__":
    main()
