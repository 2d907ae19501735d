"""The verified-token cache from Python: hits counted, the caller's claims its own, the knob."""

from __future__ import annotations

import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER


def test_a_token_seen_again_is_a_hit_and_the_claims_stay_the_callers(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True) as v:
        token = minter.token()
        first = v.verify(token)
        first["sub"] = "mallory"
        first.clear()
        second = v.verify(token)
        assert second["sub"] == "client-1@clients"
        counters = v.counters()
        assert (counters["token_cache_hit"], counters["token_cache_miss"]) == (1, 1)
        # A different token is a miss, then a hit.
        other = minter.token(jti="other")
        v.verify(other)
        v.verify(other)
        assert v.counters()["token_cache_hit"] == 2


def test_the_knob(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True,
                           token_cache=0) as v:
        token = minter.token()
        v.verify(token)
        v.verify(token)
        assert v.counters()["token_cache_hit"] == 0
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, token_cache=-1)
    with pytest.raises(ValueError, match="token_cache"):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, token_cache=10**12)
