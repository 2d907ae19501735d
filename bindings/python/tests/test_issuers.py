"""Several issuers in one Verifier (``issuers=[...]``): two real dev issuers and the PyJWT
minter, each token verified against its own issuer's keys and policy only."""

from __future__ import annotations

import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER, DevIssuer


@pytest.fixture(scope="module")
def two_issuers():
    a, b = DevIssuer(), DevIssuer()
    yield a, b
    a.stop()
    b.stop()


def reason(verifier: jwtguard.Verifier, token: str) -> str:
    try:
        verifier.verify(token)
    except jwtguard.AuthError as e:
        return e.reason
    return "ok"


def three(a: DevIssuer, b: DevIssuer, minter, **options) -> jwtguard.Verifier:
    return jwtguard.Verifier(
        issuers=[
            {"issuer": a.url, "audience": AUDIENCE, "jwks_uri": a.jwks_uri},
            # B by discovery.
            {"issuer": b.url, "audience": AUDIENCE},
            {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri, "algorithms": ["ES256"], "leeway": 0},
        ],
        **options,
    )


def test_each_issuers_tokens_verify_against_its_own_keys(two_issuers, minter):
    a, b = two_issuers
    for cache in (0, 100):
        with three(a, b, minter, token_cache=cache) as v:
            for _ in range(2):
                assert v.verify(a.token())["iss"] == a.url
                assert v.verify(b.token())["iss"] == b.url
                assert v.verify(minter.token("ES256"))["iss"] == MINTED_ISSUER
            # The minter's key signing tokens that claim A and B: their keys do not know it.
            assert reason(v, minter.token("RS256", iss=a.url)) == "key_not_found"
            assert reason(v, minter.token("RS256", iss=b.url)) == "key_not_found"
            # Each issuer's own policy: RS256 is not the minter issuer's, nor 30 s of skew.
            assert reason(v, minter.token("RS256")) == "algorithm_not_allowed"
            late = minter.token("ES256", exp=minter.claims()["iat"] - 30)
            assert reason(v, late) == "token_expired"


def test_an_unknown_iss_is_refused_without_any_fetch(two_issuers, minter):
    a, b = two_issuers
    with three(a, b, minter) as v:
        before = (a.jwks_requests(), b.jwks_requests())
        for iss in ("https://evil.example/", a.url.rstrip("/"), a.url.upper(), None):
            assert reason(v, minter.token("ES256", iss=iss)) == "issuer_invalid", iss
        assert (a.jwks_requests(), b.jwks_requests()) == before
        assert v.verify_authorization("Bearer " + a.token())["iss"] == a.url
        assert v.counters()["verify_failed"] >= 4


def test_refresh_loads_every_issuer(two_issuers, minter):
    a, b = two_issuers
    with three(a, b, minter) as v:
        before = (a.jwks_requests(), b.jwks_requests())
        v.refresh()
        after = (a.jwks_requests(), b.jwks_requests())
        assert after[0] > before[0] and after[1] > before[1]
        assert v.counters()["fetch_ok"] >= 3


def test_issuers_arguments_are_checked(two_issuers, minter):
    a, _ = two_issuers
    entry = {"issuer": a.url, "audience": AUDIENCE, "jwks_uri": a.jwks_uri}
    with pytest.raises(TypeError, match="beside issuers"):
        jwtguard.Verifier(a.url, AUDIENCE, issuers=[entry])
    with pytest.raises(TypeError, match="needs 'audience'"):
        jwtguard.Verifier(issuers=[{"issuer": a.url}])
    with pytest.raises(TypeError, match="unknown issuers entry"):
        jwtguard.Verifier(issuers=[{**entry, "audiences": "x"}])
    with pytest.raises(TypeError, match="token_cache"):
        jwtguard.Verifier(issuers=[{**entry, "token_cache": 5}])
    with pytest.raises(TypeError, match="mapping"):
        jwtguard.Verifier(issuers=["https://tenant.example/"])
    with pytest.raises(ValueError, match="empty"):
        jwtguard.Verifier(issuers=[])
    with pytest.raises(TypeError, match="needs issuer and audience"):
        jwtguard.Verifier()
    # Two issuers claiming one iss, and an incomplete one: the library refuses the config.
    with pytest.raises(ValueError, match="config_invalid"):
        jwtguard.Verifier(issuers=[entry, {**entry, "jwks_uri": minter.jwks_uri}])
    with pytest.raises(ValueError, match="invalid"):
        jwtguard.Verifier(issuers=[entry, {"issuer": "", "audience": AUDIENCE}])
    # Shared cache options reach every issuer; an entry's own win.
    with jwtguard.Verifier(issuers=[entry, {"issuer": MINTED_ISSUER, "audience": AUDIENCE, "jwks_uri": minter.jwks_uri, "ttl": 5}], ttl=300) as v:
        assert v.verify(a.token())["iss"] == a.url
        assert v.verify(minter.token())["iss"] == MINTED_ISSUER
