"""DPoP (RFC 9449) from Python: every proof check with its exact reason through
Verifier.verify_authorization, with proofs and bound tokens minted by PyJWT (tests/support/
dpop.py, minter.py), never by jwtguard; the dev issuer binding tokens to a proof's key; and the
Flask, FastAPI and Django examples and the C ping server answering DPoP calls alike."""

from __future__ import annotations

import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER, http
from dpop import ALGS, URL, DpopClient, ath, challenge, error
from harness import PingServers, raw_request
from test_frameworks import SERVERS, spawn, wait_up


def reason(verifier, authorization, **request):
    try:
        verifier.verify_authorization(authorization, **request)
        return "ok"
    except jwtguard.AuthError as e:
        return e.reason


@pytest.fixture()
def client():
    return DpopClient("ES256")


@pytest.fixture()
def bound(minter, client):
    return minter.token(cnf={"jkt": client.jkt()})


def call(verifier, token, proof, method="GET", url=URL, scheme="DPoP"):
    return reason(verifier, f"{scheme} {token}", dpop=proof, method=method, url=url)


def test_a_valid_call_and_the_claims(verifier, minter):
    for alg in ("ES256", "EdDSA", "RS256", "PS256"):
        client = DpopClient(alg)
        token = minter.token(cnf={"jkt": client.jkt()})
        claims = verifier.verify_authorization(f"DPoP {token}", dpop=client.proof(token=token), method="GET", url=URL)
        assert claims["cnf"] == {"jkt": client.jkt()}, alg
    # jwtguard's thumbprint is the one computed here, for each key type.
    assert verifier.counters()["verify_ok"] == 4


def test_a_bound_token_as_a_bearer_token(verifier, bound, client):
    assert reason(verifier, f"Bearer {bound}") == "dpop_bound_token_as_bearer"
    assert reason(verifier, f"Bearer {bound}", dpop=client.proof(token=bound), method="GET", url=URL) == "dpop_bound_token_as_bearer"
    with pytest.raises(jwtguard.AuthError) as e:
        verifier.verify(bound)
    assert e.value.reason == "dpop_bound_token_as_bearer"


def test_a_replayed_proof(verifier, bound, client):
    proof = client.proof(token=bound)
    assert call(verifier, bound, proof) == "ok"
    assert call(verifier, bound, proof) == "dpop_proof_replayed"
    assert call(verifier, bound, client.proof(token=bound)) == "ok"


def test_htm_and_htu(verifier, bound, client):
    assert call(verifier, bound, client.proof(token=bound), method="POST") == "dpop_proof_method_mismatch"
    assert call(verifier, bound, client.proof(method="POST", token=bound)) == "dpop_proof_method_mismatch"
    assert call(verifier, bound, client.proof(url="http://api/api/public", token=bound)) == "dpop_proof_url_mismatch"
    assert call(verifier, bound, client.proof(url="http://evil/api/private", token=bound)) == "dpop_proof_url_mismatch"
    assert call(verifier, bound, client.proof(url="https://api/api/private", token=bound)) == "dpop_proof_url_mismatch"
    # The query is ignored, on either side.
    assert call(verifier, bound, client.proof(token=bound), url=URL + "?page=2") == "ok"
    assert call(verifier, bound, client.proof(url=URL + "?a=b", token=bound)) == "ok"


def test_iat_window(verifier, minter, bound, client):
    now = int(time.time())
    assert call(verifier, bound, client.proof(token=bound, iat=now - 300)) == "dpop_proof_expired"
    assert call(verifier, bound, client.proof(token=bound, iat=now + 300)) == "dpop_proof_issued_in_future"
    assert call(verifier, bound, client.proof(token=bound, iat=now - 100)) == "ok"  # window 60 s + leeway 60 s
    narrow = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, leeway=0, dpop_window=5)
    assert call(narrow, bound, client.proof(token=bound, iat=now - 30)) == "dpop_proof_expired"
    narrow.close()


def test_ath(verifier, minter, bound, client):
    assert call(verifier, bound, client.proof(token=bound, ath=ath("another"))) == "dpop_proof_token_hash_mismatch"
    assert call(verifier, bound, client.proof()) == "dpop_proof_token_hash_mismatch"  # no ath
    other = minter.token(cnf={"jkt": client.jkt()}, jti="other")
    assert call(verifier, bound, client.proof(token=other)) == "dpop_proof_token_hash_mismatch"


def test_keys(verifier, bound, client):
    # Signed by another key than the jwk it carries.
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert call(verifier, bound, client.proof(token=bound, key=stranger)) == "dpop_proof_signature_invalid"
    # A good proof by another client's key.
    other = DpopClient("ES256")
    assert call(verifier, bound, other.proof(token=bound)) == "dpop_proof_key_mismatch"
    # A jwk with its private part.
    private = dict(client.jwk, d=json.loads(pyjwt.get_algorithm_by_name("ES256").to_jwk(client.key))["d"])
    assert call(verifier, bound, client.proof(token=bound, headers={"jwk": private})) == "dpop_proof_key_private"
    assert call(verifier, bound, client.proof(token=bound, headers={"jwk": None})) == "dpop_proof_key_invalid"


def test_algorithms(verifier, minter, bound, client):
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk}
    claims = {"jti": "n", "htm": "GET", "htu": URL, "iat": int(time.time()), "ath": ath(bound)}
    none = pyjwt.encode(claims, None, algorithm="none", headers=header)
    assert call(verifier, bound, none) == "dpop_proof_malformed"  # an empty signature
    assert call(verifier, bound, none + "AAAA") == "dpop_proof_algorithm_not_allowed"
    hs256 = pyjwt.encode(claims, "a shared secret of thirty-two bytes!", algorithm="HS256",
                         headers={"typ": "dpop+jwt", "jwk": client.jwk})
    assert call(verifier, bound, hs256) == "dpop_proof_algorithm_not_allowed"
    strict = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop_algorithms=["EdDSA"])
    assert call(strict, bound, client.proof(token=bound)) == "dpop_proof_algorithm_not_allowed"
    assert strict.challenge(jwtguard.STATUS_TOKEN_MISSING) == 'Bearer realm="api", DPoP realm="api", algs="EdDSA Ed25519"'
    strict.close()


def test_shape(verifier, minter, bound, client):
    assert call(verifier, bound, client.proof(token=bound, headers={"typ": "JWT"})) == "dpop_proof_type_invalid"
    assert call(verifier, bound, client.proof(token=bound, jti=None)) == "dpop_proof_claims_invalid"
    assert call(verifier, bound, client.proof(token=bound, htu=None)) == "dpop_proof_claims_invalid"
    assert call(verifier, bound, "not.a.proof") == "dpop_proof_malformed"
    assert call(verifier, bound, None) == "dpop_proof_missing"
    # Two DPoP headers, as a list (or as HTTP joins them).
    two = [client.proof(token=bound), client.proof(token=bound)]
    assert call(verifier, bound, two) == "dpop_proof_multiple"
    assert call(verifier, bound, ", ".join(two)) == "dpop_proof_multiple"
    # An unbound token with the DPoP scheme.
    plain = minter.token()
    assert call(verifier, plain, client.proof(token=plain)) == "dpop_token_not_bound"
    # A proof without method and URL to check it against is the host's mistake.
    assert reason(verifier, f"DPoP {bound}", dpop=client.proof(token=bound)) == "invalid_argument"


def test_modes(minter, bound, client):
    plain = minter.token()
    required = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop="required")
    assert reason(required, f"Bearer {plain}") == "dpop_required"
    assert call(required, bound, client.proof(token=bound)) == "ok"
    assert required.challenge(622, f"Bearer {plain}") == (
        f'DPoP realm="api", algs="{ALGS}"' + error("invalid_token", "A DPoP-bound token is required"))
    off = jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop="off")
    assert call(off, bound, client.proof(token=bound)) == "dpop_scheme_disabled"
    assert reason(off, f"Bearer {bound}") == "dpop_bound_token_as_bearer"
    assert reason(off, f"Bearer {plain}") == "ok"
    assert off.challenge(jwtguard.STATUS_TOKEN_MISSING) == 'Bearer realm="api"'
    with pytest.raises(ValueError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, dpop="on")
    required.close()
    off.close()


def test_challenges(verifier, bound):
    assert verifier.challenge(jwtguard.STATUS_TOKEN_MISSING) == challenge()
    assert verifier.challenge(613, f"DPoP {bound}") == challenge(
        dpop=error("invalid_dpop_proof", "DPoP proof was already used (jti)"))
    assert verifier.challenge(620, f"Bearer {bound}") == challenge(
        bearer=error("invalid_token", "Token is bound to a key and needs a DPoP proof"))
    assert verifier.challenge(400, f"DPoP {bound}", scope="read:messages") == challenge(
        dpop=error("insufficient_scope", "You don't have access to this resource") + ', scope="read:messages"')
    assert verifier.challenge(jwtguard.STATUS_KEYS_UNAVAILABLE) is None
    assert verifier.challenge(100, realm="x" * 2000).startswith('Bearer realm="' + "x" * 2000)


def test_the_dev_issuer_binds_tokens_to_the_proof_key(issuer):
    client = DpopClient("ES256")
    token = client.token_from(issuer.url)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims["cnf"] == {"jkt": client.jkt()}
    endpoint = issuer.url + "oauth/token"
    body = json.dumps({"audience": AUDIENCE}).encode()
    head = {"Content-Type": "application/json"}
    for bad in (client.proof("GET", endpoint), client.proof("POST", issuer.url + "other"), "x.y.z"):
        status, _, answer = http("POST", endpoint, body, dict(head, DPoP=bad))
        assert (status, answer["error"]) == (400, "invalid_dpop_proof"), answer
    proof = client.proof("POST", endpoint)
    assert http("POST", endpoint, body, dict(head, DPoP=proof))[0] == 200
    status, _, answer = http("POST", endpoint, body, dict(head, DPoP=proof))
    assert status == 400 and "dpop_proof_replayed" in answer["error_description"]
    # Without a proof: a bearer token, no cnf.
    status, _, answer = http("POST", endpoint, body, head)
    assert answer["token_type"] == "Bearer"
    assert "cnf" not in pyjwt.decode(answer["access_token"], options={"verify_signature": False})
    discovery = http("GET", issuer.url + ".well-known/openid-configuration")[2]
    assert discovery["dpop_signing_alg_values_supported"] == ALGS.split()


def test_every_python_host_and_the_c_server_answer_dpop_alike(issuer):
    """Flask, FastAPI, Django and C against one issuer, a bound token from it: each request to
    each host carries a proof for that host's own URL."""
    started = {name: spawn(name, issuer.url) for name in ("fastapi", "django")}
    ping = PingServers(issuer.url)
    try:
        for name, (process, port) in started.items():
            wait_up(name, process, port)
        ports = {"Flask": ping.ports["Flask"], "C": ping.ports["C"],
                 **{name: port for name, (_, port) in started.items()}}
        client = DpopClient("ES256")
        token = client.token_from(issuer.url)
        plain = issuer.token()
        answers = {}
        for host, port in ports.items():
            base = f"http://127.0.0.1:{port}"

            def get(path, authorization=None, *proofs):
                lines = [f"Host: 127.0.0.1:{port}"]
                if authorization:
                    lines.append(f"Authorization: {authorization}")
                lines += [f"DPoP: {p}" for p in proofs]
                raw = (f"GET {path} HTTP/1.1\r\n" + "".join(line + "\r\n" for line in lines)
                       + "Connection: close\r\n\r\n").encode()
                status, headers, body = raw_request(port, raw)
                return status, body, headers.get("www-authenticate")

            valid = client.proof(url=base + "/api/private", token=token)
            answers[host] = {
                "valid": get("/api/private", f"DPoP {token}", valid),
                "replayed": get("/api/private", f"DPoP {token}", valid),
                "scoped": get("/api/private-scoped", f"DPoP {token}",
                              client.proof(url=base + "/api/private-scoped", token=token)),
                "query": get("/api/private?x=1", f"DPoP {token}", client.proof(url=base + "/api/private", token=token)),
                "as bearer": get("/api/private", f"Bearer {token}"),
                "other path": get("/api/private", f"DPoP {token}", client.proof(url=base + "/api/public", token=token)),
                "other method": get("/api/private", f"DPoP {token}",
                                    client.proof("POST", base + "/api/private", token=token)),
                "no proof": get("/api/private", f"DPoP {token}"),
                "two proofs": get("/api/private", f"DPoP {token}", client.proof(url=base + "/api/private", token=token),
                                  client.proof(url=base + "/api/private", token=token)),
                "unbound": get("/api/private", f"DPoP {plain}", client.proof(url=base + "/api/private", token=plain)),
                "missing": get("/api/private"),
            }
        first = answers["Flask"]
        assert [first[k][0] for k in first] == [200, 401, 200, 200, 401, 401, 401, 401, 401, 401, 401]
        assert json.loads(first["replayed"][1])["code"] == "invalid_dpop_proof"
        assert first["replayed"][2] == [challenge(dpop=error("invalid_dpop_proof", "DPoP proof was already used (jti)"))]
        assert first["missing"][2] == [challenge()]
        for host, answer in answers.items():
            assert answer == first, host
    finally:
        ping.close()
        for process, _ in started.values():
            process.terminate()
            process.communicate(timeout=10)


@pytest.mark.parametrize("framework", ["flask", "fastapi", "django"])
def test_dpop_settings_reach_the_framework_verifiers(issuer, monkeypatch, framework):
    """JWTGUARD_DPOP=required reaches each example's verifier through its settings."""
    monkeypatch.setenv("JWTGUARD_DPOP", "required")
    process, port = spawn(framework, issuer.url)
    try:
        wait_up(framework, process, port)
        status, head, body = http("GET", f"http://127.0.0.1:{port}/api/private",
                                  headers={"Authorization": f"Bearer {issuer.token()}"})
        assert (status, body["code"]) == (401, "invalid_token")
        assert head["WWW-Authenticate"] == (f'DPoP realm="api", algs="{ALGS}"'
                                            + error("invalid_token", "A DPoP-bound token is required"))
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.mark.parametrize("framework", ["flask", "fastapi", "django"])
def test_dpop_origins_reach_the_framework_verifiers(issuer, monkeypatch, framework):
    """JWTGUARD_DPOP_ORIGINS (review 3, item 17) reaches each example's verifier: pinned to
    https://api.example, a proof for the example's own loopback URL is refused, while a bearer
    token still passes."""
    monkeypatch.setenv("JWTGUARD_DPOP_ORIGINS", "https://api.example")
    process, port = spawn(framework, issuer.url)
    try:
        wait_up(framework, process, port)
        client = DpopClient("ES256")
        token = client.token_from(issuer.url)
        url = f"http://127.0.0.1:{port}/api/private"
        status, head, body = http("GET", url, headers={"Authorization": f"DPoP {token}",
                                                       "DPoP": client.proof(url=url, token=token)})
        assert (status, body["code"]) == (401, "invalid_dpop_proof"), body
        assert head["WWW-Authenticate"] == challenge(dpop=error("invalid_dpop_proof", "DPoP proof is for another URL (htu)"))
        assert http("GET", url, headers={"Authorization": f"Bearer {issuer.token()}"})[0] == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
