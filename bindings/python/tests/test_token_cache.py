"""The verified-token cache from Python: hits counted, the caller's claims its own, the knob."""

from __future__ import annotations

import time

import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER
from harness import DevIssuer


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


# Once a token verified, the binding keeps its parsed claims and later asks the library only
# for the verdict (jwt_verify_status): the verdict is still the library's every time.


def test_kept_claims_are_copied_all_the_way_down(minter):
    with jwtguard.Verifier(MINTED_ISSUER, [AUDIENCE, "other"], jwks_uri=minter.jwks_uri,
                           allow_insecure_http=True) as v:
        token = minter.token(aud=[AUDIENCE, "other"], ext={"x5t#S256": "abc", "list": [1, {"a": 2}]})
        for _ in range(3):
            claims = v.verify(token)
            assert claims["aud"] == [AUDIENCE, "other"]
            assert claims["ext"] == {"x5t#S256": "abc", "list": [1, {"a": 2}]}
            claims["aud"].append("mallory")
            claims["ext"]["list"][1]["a"] = 3
            claims["ext"]["admin"] = True
            claims["sub"] = "mallory"
        header = v.verify_authorization("Bearer " + token)
        assert header["sub"] == "client-1@clients" and header["ext"]["list"] == [1, {"a": 2}]
        assert v.counters()["token_cache_hit"] == 3


def test_a_kept_token_is_refused_once_it_expires(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True,
                           leeway=0) as v:
        expires = int(time.time()) + 2
        token = minter.token(exp=expires, jti="short")
        assert v.verify(token)["exp"] == expires
        assert v.verify_authorization("Bearer " + token)["exp"] == expires
        while time.time() < expires + 1.1:
            time.sleep(0.2)
        for call in (lambda: v.verify(token), lambda: v.verify_authorization("Bearer " + token)):
            with pytest.raises(jwtguard.AuthError) as refused:
                call()
            assert refused.value.reason == "token_expired"
        assert token.encode() not in v._parsed  # refused for good: its claims are not kept


def test_a_kept_token_is_refused_once_its_key_is_retired():
    issuer = DevIssuer()
    try:
        with jwtguard.Verifier(issuer.url, AUDIENCE, allow_insecure_http=True) as v:
            token = issuer.token()
            assert v.verify(token)["iss"] == issuer.url
            assert v.verify(token)["iss"] == issuer.url
            issuer.rotate(retire=True)
            v.refresh()
            with pytest.raises(jwtguard.AuthError) as refused:
                v.verify(token)
            assert refused.value.reason == "key_not_found"
            # A fresh token from the new key verifies.
            assert v.verify(issuer.token())["iss"] == issuer.url
    finally:
        issuer.stop()


def test_a_kept_token_on_a_closed_verifier_is_an_error(minter):
    v = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True)
    token = minter.token()
    v.verify(token)
    v.close()
    with pytest.raises(ValueError, match="closed"):
        v.verify(token)
    with pytest.raises(ValueError, match="closed"):
        v.verify_authorization("Bearer " + token)


def test_kept_claims_are_bounded(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True,
                           token_cache=3) as v:
        tokens = [minter.token(jti=f"bound-{i}") for i in range(5)]
        for token in tokens * 2:
            assert v.verify(token)["jti"] == f"bound-{tokens.index(token)}"
        assert len(v._parsed) == 3


def test_one_token_takes_one_entry_whatever_the_header_and_each_form_is_checked_as_itself(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True) as v:
        token = minter.token(jti="forms")
        for header in ("Bearer " + token, "bearer  " + token, "BEARER\t" + token + " ", " Bearer " + token):
            assert v.verify_authorization(header)["jti"] == "forms"
        assert v.verify(token)["jti"] == "forms"
        assert list(v._parsed) == [token.encode()]
        # The kept claims never stand in for the library's verdict on the form given.
        for refused, call in (
            ("token_malformed", lambda: v.verify("Bearer " + token)),
            ("authorization_scheme_unsupported", lambda: v.verify_authorization(token)),  # no scheme
            ("authorization_scheme_unsupported", lambda: v.verify_authorization("Basic " + token)),
            ("authorization_header_malformed", lambda: v.verify_authorization("Bearer " + token + "\r\nX: y")),
        ):
            with pytest.raises(jwtguard.AuthError) as error:
                call()
            assert error.value.reason == refused
        assert v.verify_authorization("Bearer " + token)["jti"] == "forms"


def test_no_kept_claims_without_the_token_cache(minter):
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True,
                           token_cache=0) as v:
        assert v.verify(minter.token())["sub"] == "client-1@clients"
        assert v._parsed is None


def test_kept_claims_stay_bounded_under_threads(minter):
    import threading

    tokens = [minter.token("ES256", jti=f"thr-{i}") for i in range(200)]
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True,
                           algorithms=("ES256",), token_cache=16) as v:
        errors = []

        def run(offset: int) -> None:
            try:
                for i in range(400):
                    token = tokens[(i * 7 + offset) % len(tokens)]
                    assert v.verify(token)["jti"] == f"thr-{tokens.index(token)}"
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(t * 13,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(v._parsed) <= 16


def test_live_handles_are_counted_and_freed(minter):
    before = jwtguard.live_handles()
    v = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, allow_insecure_http=True)
    assert jwtguard.live_handles()["verifiers"] == before["verifiers"] + 1
    v.verify(minter.token(jti="live"))
    assert jwtguard.live_handles()["claims"] == 0 and jwtguard.live_handles()["configs"] == 0
    v.close()
    assert jwtguard.live_handles() == before
