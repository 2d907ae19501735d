"""jwtguard.Verifier through ctypes: tokens minted independently (PyJWT) and by the dev
issuer, every error code through verify and verify_authorization, has_scope, lifecycle."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_pyjwt_tokens_verify(verifier, minter, alg):
    claims = verifier.verify(minter.token(alg))
    assert claims["sub"] == "client-1@clients"
    assert claims["aud"] == AUDIENCE
    assert jwtguard.has_scope(claims, "read:messages")


@pytest.mark.parametrize("token_cache", [0, 100])
def test_the_claims_are_the_payload_exactly(minter, token_cache):
    """Every way in (a token, a header, a DPoP request) returns the payload PyJWT decodes, odd
    values included: integers beyond 64 bits, floats, escapes, nested objects, non-ASCII."""
    odd = {"big": 2**70, "negative": -(2**65), "float": 1.5e300, "tiny": 5e-324, "escaped": "a\"\\\u2028\u0000b",
           "unicode": "\u00e9\U0001f600", "nested": {"a": [1, {"b": None}], "c": True}, "empty": {}}
    token = minter.token(**odd)
    expected = pyjwt.decode(token, options={"verify_signature": False})
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, token_cache=token_cache) as v:
        for _ in range(2):  # a new token, then (with the cache on) a kept one
            assert v.verify(token) == expected
            assert v.verify(token.encode()) == expected
            assert v.verify_authorization(f"Bearer  {token}") == expected
            assert v.verify_authorization(f"Bearer {token}", method="GET", url="https://api/x") == expected
        assert v.verify(token)["big"] == 2**70 and isinstance(v.verify(token)["big"], int)


def test_dev_issuer_tokens_verify_with_discovery(issuer):
    with jwtguard.Verifier(issuer.url, AUDIENCE) as v:
        claims = v.verify(issuer.token("read:messages"))
        assert claims["iss"] == issuer.url
        assert claims["client_id"] == "dev-client"
        assert v.counters()["fetch_ok"] >= 1


def test_fixed_jwks_and_jwks_file(minter, tmp_path):
    token = minter.token()
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks) as v:
        assert v.verify(token)["jti"] == "j-1"
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(minter.jwks))
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_file=path) as v:
        assert v.verify(token)["jti"] == "j-1"


def refused(verifier, token) -> jwtguard.AuthError:
    with pytest.raises(jwtguard.AuthError) as info:
        verifier.verify(token)
    return info.value


@pytest.mark.parametrize(
    "changes, reason, code",
    [
        ({"exp": int(time.time()) - 3600}, "token_expired", "token_expired"),
        ({"exp": None}, "time_claim_invalid", "invalid_claims"),
        ({"exp": "tomorrow"}, "time_claim_invalid", "invalid_claims"),
        ({"nbf": int(time.time()) + 3600}, "token_not_yet_valid", "invalid_claims"),
        ({"iat": int(time.time()) + 3600}, "token_issued_in_future", "invalid_claims"),
        ({"iss": "https://evil.example/"}, "issuer_invalid", "invalid_claims"),
        ({"iss": None}, "issuer_invalid", "invalid_claims"),
        ({"aud": "https://other.example"}, "audience_invalid", "invalid_claims"),
        ({"aud": []}, "audience_invalid", "invalid_claims"),
    ],
)
def test_claim_errors(verifier, minter, changes, reason, code):
    error = refused(verifier, minter.token(**changes))
    assert (error.reason, error.code, error.status_code, error.error) == (reason, code, 401, "invalid_token")
    assert error.to_dict() == {"code": code, "description": error.description}


def test_header_and_signature_errors(verifier, minter):
    good = minter.token()
    head, payload, sig = good.split(".")
    none_header = b64(json.dumps({"alg": "none", "kid": "rsa"}).encode())
    cases = {
        "alg none": (f"{none_header}.{payload}.AAAA", "algorithm_not_allowed"),
        "hs256 with the public key": (
            pyjwt.encode(minter.claims(), "secret-key-of-32-bytes-at-least!!", algorithm="HS256", headers={"kid": "rsa"}),
            "algorithm_not_allowed",
        ),
        "tampered payload": (f"{head}.{b64(json.dumps(minter.claims(scope='admin')).encode())}.{sig}", "signature_invalid"),
        "bad signature": (good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"), "signature_invalid"),
        "unknown kid": (minter.token(headers={"kid": "nope"}), "key_not_found"),
        "two segments": (f"{head}.{payload}", "token_malformed"),
        "padding": (good + "=", "token_malformed"),
        "garbage": ("garbage", "token_malformed"),
        "empty": ("", "token_malformed"),
        "typ id_token": (minter.token(headers={"typ": "id_token+jwt"}), "type_not_allowed"),
        "crit": (minter.token(headers={"crit": ["exp"]}), "critical_header_unsupported"),
        "too large": (minter.token(pad="x" * 20000), "token_too_large"),
    }
    for name, (token, reason) in cases.items():
        error = refused(verifier, token)
        assert error.reason == reason, name
        assert error.status_code == 401, name
        assert error.error == "invalid_token", name


def test_authorization_header_forms(verifier, minter):
    token = minter.token()
    assert verifier.verify_authorization(f"Bearer {token}")["sub"] == "client-1@clients"
    assert verifier.verify_authorization(f"bearer {token}")["sub"] == "client-1@clients"
    for header, reason, status, code, error in [
        (None, "token_missing", 401, "authorization_header_missing", ""),
        ("", "token_missing", 401, "authorization_header_missing", ""),
        # Another scheme (RFC 6750 3.1: "an unsupported authentication method"): 401, no error.
        (f"Basic {token}", "authorization_scheme_unsupported", 401, "invalid_header", ""),
        ("Token x", "authorization_scheme_unsupported", 401, "invalid_header", ""),
        ("Digest a=b", "authorization_scheme_unsupported", 401, "invalid_header", ""),
        ("Bearer", "authorization_header_malformed", 400, "invalid_header", "invalid_request"),
        (f"Bearer {token} {token}", "authorization_header_malformed", 400, "invalid_header", "invalid_request"),
        ("Bearer not.a.token", "token_malformed", 401, "invalid_header", "invalid_token"),
    ]:
        with pytest.raises(jwtguard.AuthError) as info:
            verifier.verify_authorization(header)
        e = info.value
        assert (e.reason, e.status_code, e.code, e.error) == (reason, status, code, error), header


def test_keys_unavailable_is_503(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri="http://127.0.0.1:9/jwks", timeouts=(0.5, 0.5)) as v:
        error = refused(v, minter.token())
        assert (error.reason, error.status_code) == ("keys_unavailable", 503)


def test_required_claims_and_strict(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, required_claims=["client_id"], strict=True) as v:
        assert v.verify(minter.token())["client_id"] == "client-1"
        assert refused(v, minter.token(client_id=None)).reason == "required_claim_missing"
        assert refused(v, minter.token(headers={"typ": "JWT"})).reason == "type_not_allowed"


@pytest.mark.parametrize(
    "claims, granted",
    [
        ({"scope": "openid read:messages"}, True),
        ({"scp": "read:messages"}, True),
        ({"scp": ["read:messages"]}, True),
        ({"permissions": ["read:messages"]}, True),
        ({"scope": "read:messages2"}, False),
        ({"scope": "xread:messages"}, False),
        ({"scope": "read:message"}, False),
        ({"scope": "READ:MESSAGES"}, False),
        ({"scope": ""}, False),
        ({"scope": ["read:messages"]}, False),
        ({"scope": 7}, False),
        ({"permissions": "read:messages"}, False),
        ({}, False),
    ],
)
def test_has_scope_case_29(claims, granted):
    assert jwtguard.has_scope(claims, "read:messages") is granted


def test_has_scope_odd_inputs():
    assert jwtguard.has_scope({"scope": "a b"}, "") is False
    assert jwtguard.has_scope({"scope": "a b"}, "a b") is False
    assert jwtguard.has_scope({"scope": "a", "x": object()}, "a") is False


def test_configuration_errors():
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, algorithms=["HS256"])
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri="http://tenant.example/jwks")
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks={"keys": []})
    with pytest.raises(ValueError):
        jwtguard.Verifier("", AUDIENCE)
    with pytest.raises(TypeError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, no_such_option=1)
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri="http://127.0.0.1/x", jwks={"keys": []})


def test_lists_of_issuers_and_audiences_and_cache_options(minter, tmp_path):
    with jwtguard.Verifier(
        ["https://other/", MINTED_ISSUER],
        ["x", AUDIENCE],
        jwks_uri=minter.jwks_uri,
        ttl=120,
        refresh_ahead=10,
        refetch_cooldown=5,
        max_stale=3600,
        ttl_bounds=(60, 600),
        backoff=(1, 30),
        timeouts=(1, 2),
        max_jwks_size=65536,
        max_token_size=8192,
        non_blocking=False,
        snapshot=tmp_path / "snap.json",
        allow_insecure_http=False,
    ) as v:
        assert v.verify(minter.token())["sub"]
        assert (tmp_path / "snap.json").exists()


def test_close_is_idempotent_and_final(minter):
    v = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks)
    v.close()
    v.close()
    with pytest.raises(ValueError):
        v.verify(minter.token())


def test_rotation_and_refresh():
    from conftest import DevIssuer

    issuer = DevIssuer()
    with jwtguard.Verifier(issuer.url, AUDIENCE, jwks_uri=issuer.jwks_uri) as v:
        v.refresh()
        assert v.verify(issuer.token())["sub"]
        issuer.rotate()
        assert v.verify(issuer.token())["sub"], "a new key verifies on its first token"
        counters = v.counters()
        assert counters["unknown_kid_refetch"] == 1
        assert counters["verify_ok"] == 2
    issuer.stop()


def test_library_version_matches_package():
    assert jwtguard.version() == jwtguard.__version__
