"""Writes fuzz/jwks.json (the public keys of tests/fixtures) and the seed corpora under
fuzz/seeds/ (tokens signed with those keys, headers, JWKS and discovery documents, C ABI
inputs, DPoP proofs). Run from the repository root with the dev venv: .venv/bin/python fuzz/make_seeds.py
The output is committed; rerun only to change the seeds."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
SEEDS = ROOT / "fuzz" / "seeds"
ISSUER = "https://issuer.example/"
AUDIENCE = "https://api.example"


def write(target: str, items: list[bytes]) -> None:
    folder = SEEDS / target
    folder.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        (folder / f"seed-{i:02d}").write_bytes(item)


def dpop_seeds(keys: dict) -> list[bytes]:
    """The request URL, a newline, a DPoP proof for it (fuzz_targets/dpop.rs: now is
    1,800,000,000, the access token "token")."""
    url = "https://api.example/api/private"
    ath = base64.urlsafe_b64encode(hashlib.sha256(b"token").digest()).rstrip(b"=").decode()
    claims = {"jti": "seed", "htm": "GET", "htu": url, "iat": 1800000000, "ath": ath}
    seeds = []
    for kid, alg in (("ec", "ES256"), ("ed", "EdDSA"), ("rsa", "RS256")):
        jwk = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(keys[kid].public_key()))
        proof = jwt.encode(claims, keys[kid], algorithm=alg, headers={"typ": "dpop+jwt", "jwk": jwk})
        seeds.append(f"{url}\n{proof}".encode())
    seeds += [b"HTTP://API.example:443/a/../api/%7eprivate?x#y\n", b"http://[::1]:8080/\nx.y.z",
              b"https://api.example?/api/private\n"]
    return seeds


def c_abi_request_seeds(token: str, dpop_seed: bytes) -> list[bytes]:
    """Selector 6: a request, Authorization / DPoP / method / URL one per line."""
    url, proof = dpop_seed.split(b"\n", 1)
    return [bytes([6]) + b"\n".join([b"DPoP " + token.encode(), proof, b"GET", url]),
            bytes([6]) + b"Bearer " + token.encode()]


def key(name: str):
    return serialization.load_pem_private_key((FIXTURES / name).read_bytes(), password=None)


def main() -> None:
    keys = {"rsa": key("rsa2048-a.pem"), "ec": key("ec-p256.pem"), "ed": key("ed25519.pem")}
    jwks = []
    for kid, alg in (("rsa", "RS256"), ("ec", "ES256"), ("ed", "EdDSA")):
        jwk = json.loads(jwt.get_algorithm_by_name(alg).to_jwk(keys[kid].public_key()))
        jwk.update({"kid": kid, "use": "sig"})
        jwks.append(jwk)
    (ROOT / "fuzz" / "jwks.json").write_text(json.dumps({"keys": jwks}, indent=1) + "\n")

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "fuzz", "iat": 1700000000, "exp": 4102444800,
              "scope": "read:messages write:messages", "nested": {"a": [1, 2.5, None, True]}}
    tokens = []
    for kid, alg in (("rsa", "RS256"), ("rsa", "PS256"), ("ec", "ES256"), ("ed", "EdDSA")):
        for typ in ("at+jwt", "JWT"):
            tokens.append(jwt.encode(claims, keys[kid], algorithm=alg, headers={"kid": kid, "typ": typ}))
    tokens.append(jwt.encode({**claims, "aud": [AUDIENCE, "other"]}, keys["rsa"], algorithm="RS256",
                             headers={"kid": "rsa"}))
    tokens.append(jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": "rsa"}))
    tokens.append("eyJhbGciOiJub25lIn0.e30.")

    write("verify", [t.encode() for t in tokens])
    write("authorization", [b"Bearer " + t.encode() for t in tokens[:3]]
          + [b"bearer  x.y.z", b"Basic abc", b"Bearer a, Bearer b", b"Bearer \t a.b.c \t", b"", b"Bearer"])
    write("jwks", [json.dumps({"keys": jwks}).encode(), b'{"keys":[]}', b'{"keys":[{"kty":"RSA"}]}',
                   json.dumps({"keys": [jwks[0], jwks[0]]}).encode()])
    write("discovery", [json.dumps({"issuer": ISSUER, "jwks_uri": ISSUER + ".well-known/jwks.json"}).encode(),
                        json.dumps({"issuer": "https://other/", "jwks_uri": "http://x/"}).encode(), b"{}", b"[]"])
    # token_cache: op bytes; c_abi: a selector byte and then the input.
    write("token_cache", [bytes(range(64)), bytes([0, 1, 2, 3] * 16)])
    dpop = dpop_seeds(keys)
    write("c_abi", [bytes([i]) + t.encode() for i, t in enumerate(tokens[:4])]
          + [bytes([5]) + b"Bearer " + tokens[0].encode(), bytes([7]) + b"RS256"]
          + c_abi_request_seeds(tokens[0], dpop[0]))
    write("dpop", dpop)


if __name__ == "__main__":
    main()
