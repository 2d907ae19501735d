"""Review 3 (issue 23) in the Python package itself: several `iss` names found by discovery
(item 1), the library's host[:port] check and pinned DPoP origins on a Verifier (items 4 and
17), and what Verifier.challenge takes (item 13). Each framework's own share of items 4, 9
and 17 is in test_flask.py, test_fastapi.py and test_django.py (framework_checks.py)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER, DevIssuer
from dpop import NO_TOKEN_CHALLENGE, DpopClient, challenge, error
from jwtguard._http import insufficient_scope


def reason(verifier: jwtguard.Verifier, token: str) -> str:
    try:
        verifier.verify(token)
    except jwtguard.AuthError as e:
        return e.reason
    return "ok"


class DiscoveryIssuer:
    """An issuer whose keys this test holds: on loopback, its discovery document names a JWKS
    with the minter's public keys, so PyJWT signs tokens with its keys claiming any `iss`."""

    def __init__(self, jwks: dict):
        documents: dict = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                data = json.dumps(body if body is not None else {}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        documents["/.well-known/openid-configuration"] = {"issuer": self.url, "jwks_uri": self.url + "keys"}
        documents["/keys"] = jwks
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_item1_several_iss_names_by_discovery_each_trust_only_their_own_keys(minter):
    """Verifier(issuer=[C, A, B]) without jwks_uri: each name discovers its own keys. Before,
    only the first name's discovery was fetched: A's and B's own tokens were refused (their
    keys never fetched), and C's key signing a token that claims A or B was accepted; C is
    first here, so that is what a tenant holding C's key would try."""
    c = DiscoveryIssuer(minter.jwks)
    a, b = DevIssuer(), DevIssuer()
    try:
        with jwtguard.Verifier(issuer=[c.url, a.url, b.url], audience=AUDIENCE, algorithms=["RS256", "ES256"]) as v:
            for _ in range(2):  # the second time from the caches
                assert v.verify(minter.token(iss=c.url))["iss"] == c.url
                assert v.verify(minter.token("ES256", iss=c.url))["iss"] == c.url
                assert v.verify(a.token())["iss"] == a.url
                assert v.verify(b.token())["iss"] == b.url
                for iss in (a.url, b.url):
                    assert reason(v, minter.token(iss=iss)) == "key_not_found", iss
                    assert reason(v, minter.token("ES256", iss=iss)) == "key_not_found", iss
            # Through the Authorization header too.
            assert v.verify_authorization(f"Bearer {b.token()}")["iss"] == b.url
            with pytest.raises(jwtguard.AuthError) as refused:
                v.verify_authorization(f"Bearer {minter.token(iss=b.url)}")
            assert refused.value.reason == "key_not_found"
        # Names sharing one explicit jwks_uri (one issuer's canonical and custom domains)
        # still share its keys.
        with jwtguard.Verifier(issuer=[c.url, MINTED_ISSUER], audience=AUDIENCE, jwks_uri=minter.jwks_uri) as v:
            assert v.verify(minter.token(iss=c.url))["iss"] == c.url
            assert v.verify(minter.token(iss=MINTED_ISSUER))["iss"] == MINTED_ISSUER
            assert reason(v, a.token()) in ("key_not_found", "issuer_invalid")  # A is not one of them
    finally:
        a.stop()
        b.stop()
        c.close()


def test_item4_is_authority_is_the_librarys_host_port_check():
    for good in ("api.example", "api.example:8080", "API.Example:443", "127.0.0.1", "127.0.0.1:65535", "[::1]",
                 "[::1]:8080", "xn--bcher-kva.example", "a-b_c~d.example", b"api.example", bytearray(b"api")):
        assert jwtguard.is_authority(good) is True, good
    for bad in ("", None, "api.example/x", "api.example/", "api.example?", "api.example#x", "user@api.example",
                "api.example\\x", "api.example:99999", "api.example:8080:1", "::1", "[::1", "a b", "api.example\r\n",
                "api.example\x00", "bücher.example", "ex\udc80ample", b"api.example\xff", "http://api.example"):
        assert jwtguard.is_authority(bad) is False, bad
    with pytest.raises(TypeError):
        jwtguard.is_authority(443)  # type: ignore[arg-type]
    assert "is_authority" in jwtguard.__all__


def test_item17_dpop_origins_on_a_verifier(minter):
    client = DpopClient("ES256")
    bound = minter.token(cnf={"jkt": client.jkt()})

    def call(verifier, url, proof_url=None):
        proof = client.proof(url=proof_url or url, token=bound)
        try:
            verifier.verify_authorization(f"DPoP {bound}", dpop=proof, method="GET", url=url)
            return "ok"
        except jwtguard.AuthError as e:
            return e.reason

    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri,
                           dpop_origins=["https://api.example", "http://127.0.0.1:8080"]) as v:
        assert call(v, "https://api.example/api/private") == "ok"
        assert call(v, "https://api.example:443/api/private?q=1") == "ok"
        assert call(v, "http://127.0.0.1:8080/api/private") == "ok"
        for other in ("http://api.example/api/private", "https://evil.example/api/private",
                      "https://api.example:8443/api/private", "http://127.0.0.1/api/private",
                      "https://api.example.evil/api/private"):
            assert call(v, other) == "dpop_proof_url_mismatch", other
        # What an integration passes when the Host is not host[:port]: no proof matches it.
        assert call(v, "", proof_url="https://api.example/api/private") == "dpop_proof_url_mismatch"
        # A bearer token needs no URL: the origins do not concern it.
        plain = minter.token()
        assert v.verify_authorization(f"Bearer {plain}", method="GET", url="https://evil.example/")["sub"]
        assert v.verify_authorization(f"Bearer {plain}", method="GET", url="")["sub"]
    # One origin as a string; none given: the request's URL is trusted as the host built it.
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop_origins="https://api.example") as v:
        assert call(v, "https://api.example/api/private") == "ok"
        assert call(v, "https://evil.example/api/private") == "dpop_proof_url_mismatch"
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri) as v:
        assert call(v, "https://evil.example/api/private") == "ok"
    for bad in ("api.example", "https://api.example/api", "ftp://api.example", "https://", "https://api.example?x", ""):
        with pytest.raises(ValueError, match="dpop origin"):
            jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop_origins=[bad])
    with pytest.raises(TypeError, match="dpop_origins"):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop_origins=[b"https://api.example"])


def test_item13_challenge_takes_the_refusal_or_its_library_status_never_an_http_status(verifier, minter):
    with pytest.raises(jwtguard.AuthError) as missing:
        verifier.verify_authorization(None)
    e = missing.value
    assert (e.status, e.status_code) == (100, 401)
    assert verifier.challenge(e) == verifier.challenge(e.status) == verifier.challenge(100) == NO_TOKEN_CHALLENGE
    # The HTTP statuses a refusal has that are no jwtguard status: refused, saying what to pass.
    for http_status in (401, 403, 503, 404):
        with pytest.raises(ValueError, match=rf"{http_status} is not a jwtguard status.*not an HTTP status"):
            verifier.challenge(http_status)
    for wrong in ("401", 401.0, True, None):
        with pytest.raises(TypeError, match="AuthError or its status"):
            verifier.challenge(wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a jwtguard status"):
        verifier.challenge(2**32 + 100)  # not wrapped around to status 100
    # An unsupported scheme's refusal (102, HTTP 401): the challenge has no error (RFC 6750 3.1).
    with pytest.raises(jwtguard.AuthError) as basic:
        verifier.verify_authorization("Basic dXNlcjpwYXNz")
    assert (basic.value.status, basic.value.status_code) == (102, 401)
    assert verifier.challenge(basic.value, "Basic dXNlcjpwYXNz") == NO_TOKEN_CHALLENGE
    # The refusal of a missing scope carries its scope; a given scope wins.
    scoped = insufficient_scope("read:messages")
    denied = error("insufficient_scope", "You don't have access to this resource")
    assert verifier.challenge(scoped) == challenge(bearer=denied + ', scope="read:messages"')
    assert verifier.challenge(scoped, scope="write:messages") == challenge(bearer=denied + ', scope="write:messages"')
    assert verifier.challenge(400) == challenge(bearer=denied)  # jwtguard's 400 (a 403) is a status
    assert verifier.challenge(jwtguard.STATUS_KEYS_UNAVAILABLE) is None  # and its 500 (a 503)
    # The refusal of a real token, as an application writes it.
    with pytest.raises(jwtguard.AuthError) as expired:
        verifier.verify(minter.token(exp=1000))
    assert verifier.challenge(expired.value, f"Bearer {minter.token()}") == challenge(
        bearer=error("invalid_token", "Token is expired"))
