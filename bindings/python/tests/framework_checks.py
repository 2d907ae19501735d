"""What every web integration (Flask, FastAPI, Django) must answer alike, run by each
framework's own test module through its in-process client (test_flask.py, test_fastapi.py,
test_django.py), so that each also runs on its framework's oldest declared version
(`make python-floor-test`): review 3 (issue 23) items 4, 9 and 17.

Each check takes `get(path, headers, host="api.example") -> (status, JSON body or None,
WWW-Authenticate or None)`: a GET of `path` on plain HTTP with that `Host` header, against an
app whose routes /api/private and /api/private-scoped are guarded by a verifier of the PyJWT
minter's tokens (tests/support/minter.py)."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from dpop import NO_TOKEN_CHALLENGE, DpopClient, challenge, error

Answer = Tuple[int, Optional[dict], Optional[str]]
Get = Callable[..., Answer]

MALFORMED = error("invalid_request", "Authorization header must be 'Bearer <token>'")


def check_unsupported_schemes(get: Get, get_dpop_off: Get, token: str) -> None:
    """Item 9: a scheme jwtguard does not take (RFC 6750 section 3.1: "an unsupported
    authentication method") is 401 with the quickstart's `invalid_header` and a challenge
    without `error`; `DPoP` under dpop off likewise; a malformed header of a supported scheme
    stays 400 `invalid_request`."""
    for header in ("Basic dXNlcjpwYXNz", "Token x", "Digest a=b", f"Basic {token}", "Basic"):
        status, body, head = get("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (401, "invalid_header"), (header, status, body)
        assert head == NO_TOKEN_CHALLENGE, (header, head)
        status, body, head = get_dpop_off("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (401, "invalid_header"), (header, status, body)
        assert head == 'Bearer realm="api"', (header, head)
    status, body, head = get_dpop_off("/api/private", {"Authorization": f"DPoP {token}"})
    assert (status, (body or {}).get("code")) == (401, "invalid_header"), (status, body)
    assert head == 'Bearer realm="api"', head
    for header in ("Bearer", "Bearer a b", f"Bearer {token} {token}"):
        status, body, head = get("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (400, "invalid_header"), (header, status, body)
        assert head == challenge(bearer=MALFORMED), (header, head)
        status, body, head = get_dpop_off("/api/private", {"Authorization": header})
        assert (status, (body or {}).get("code")) == (400, "invalid_header"), (header, status, body)
        assert head == 'Bearer realm="api"' + MALFORMED, (header, head)
    # A token the scheme does not hide still verifies.
    assert get("/api/private", {"Authorization": f"Bearer {token}"})[0] == 200


def dpop_call(client: DpopClient, token: str, url: str) -> Dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": client.proof(url=url, token=token)}


def check_proof_url_host(get: Get, client: DpopClient, token: str, refused: Tuple[int, Optional[str]],
                         bearer: str, bearer_status: int) -> None:
    """Item 4: the URL a proof is checked against is built from the `Host` header only when it
    is `host[:port]` (jwtguard.is_authority). `Host: api.example/x` would turn a request for
    /api/private into http://api.example/x/api/private: a proof made for that URL is refused
    (`refused`: the status and JSON code the framework answers), while the same request with
    `Host: api.example` and a proof for its own URL passes. A bearer token needs no URL: with
    such a Host it gets `bearer_status` (200 where the framework leaves the Host to jwtguard)."""
    assert get("/api/private", dpop_call(client, token, "http://api.example/api/private"))[0] == 200
    for host, url in (
        ("api.example/x", "http://api.example/x/api/private"),
        ("api.example/x/", "http://api.example/x//api/private"),
        ("api.example:80/x", "http://api.example/x/api/private"),
        ("api.example?", "http://api.example/api/private"),
        ("user@api.example", "http://user@api.example/api/private"),
    ):
        status, body, _ = get("/api/private", dpop_call(client, token, url), host=host)
        assert (status, (body or {}).get("code")) == refused, (host, status, body)
    # A proof for the URL the request would have had with a clean Host does not pass either.
    status, body, _ = get("/api/private", dpop_call(client, token, "http://api.example/api/private"),
                          host="api.example/x")
    assert (status, (body or {}).get("code")) == refused, (status, body)
    assert get("/api/private", {"Authorization": f"Bearer {bearer}"}, host="api.example/x")[0] == bearer_status


def check_pinned_origins(get: Get, client: DpopClient, token: str) -> None:
    """Item 17: with the API's origin pinned (dpop_origins: http://api.example), a proof is
    accepted for a request on that origin, and refused for any other Host, though it names the
    very URL that Host makes; bearer tokens are not concerned."""
    assert get("/api/private", dpop_call(client, token, "http://api.example/api/private"))[0] == 200
    assert get("/api/private-scoped", dpop_call(client, token, "http://api.example/api/private-scoped"))[0] == 200
    for host in ("evil.example", "api.example:8080", "127.0.0.1", "API.example.evil"):
        status, body, head = get("/api/private", dpop_call(client, token, f"http://{host}/api/private"), host=host)
        assert (status, (body or {}).get("code")) == (401, "invalid_dpop_proof"), (host, status, body)
        assert head == challenge(dpop=error("invalid_dpop_proof", "DPoP proof is for another URL (htu)")), head
