"""jwtguard.fastapi in process, through the ASGI interface itself (no HTTP client library, so
any header goes through as written): the dependency on this FastAPI version (review 3, item
10: FastAPI 0.100 to 0.120 took `Request` and `SecurityScopes` of the dependency's postponed
annotations for query parameters and answered 422 on every protected route), and review 3's
items 4, 9 and 17 (framework_checks.py). `make python-floor-test` runs this module on the
oldest FastAPI and Starlette declared too.

(No `from __future__ import annotations` here either: the routes are written as an
application would write them.)"""

import json
from typing import Any, Dict, List, Optional, Tuple

import fastapi
import pytest
from fastapi import Depends, FastAPI, Security

from conftest import AUDIENCE, MINTED_ISSUER
from dpop import NO_TOKEN_CHALLENGE, DpopClient, challenge, error
from framework_checks import (
    asgi_call,
    dpop_call,
    check_pinned_origins,
    check_proof_url_host,
    check_proof_url_is_the_raw_target,
    check_two_authorization_lines,
    check_unsupported_schemes,
)
from jwtguard.fastapi import JWTGuard


def make_app(auth: JWTGuard) -> FastAPI:
    app = FastAPI()
    auth.install(app)

    @app.get("/api/public")
    async def public() -> Dict[str, str]:
        return {"message": "public"}

    @app.get("/api/private")
    async def private(claims: Dict[str, Any] = Depends(auth)) -> Dict[str, str]:
        return {"sub": claims["sub"]}

    @app.get("/api/private-scoped")
    async def scoped(claims: Dict[str, Any] = Security(auth, scopes=["read:messages"])) -> Dict[str, str]:
        return {"sub": claims["sub"]}

    @app.get("/api/files/{name:path}")
    async def files(name: str, claims: Dict[str, Any] = Depends(auth)) -> Dict[str, str]:
        return {"file": name}

    return app


class Api:
    """framework_checks' `get` for a FastAPI app guarded by `auth`; closes its verifier."""

    def __init__(self, auth: JWTGuard):
        self.auth = auth
        self.app = make_app(auth)

    def __call__(self, path: str, headers: Dict[str, str], host: Optional[str] = "api.example",
                 extra: Tuple[Tuple[str, str], ...] = (), **scope: Any) -> Tuple[int, Optional[dict], Optional[str]]:
        """`scope`: asgi_call's raw_path and root_path."""
        lines = ([("Host", host)] if host is not None else []) + list(extra) + list(headers.items())
        status, head, body = asgi_call(self.app, path, lines, **scope)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        challenges = head.get("www-authenticate")
        assert challenges is None or len(challenges) == 1, challenges
        return status, parsed, challenges[0] if challenges else None

    def close(self) -> None:
        self.auth.close()


@pytest.fixture()
def api(minter):
    made: List[Api] = []

    def make(**settings: Any) -> Api:
        """An app of the minter's tokens with these settings (`from_env=True`: JWTGuard()
        with no settings in code, so from the environment)."""
        if settings.pop("from_env", False):
            auth = JWTGuard(**settings)
        else:
            auth = JWTGuard(issuer=MINTED_ISSUER, audience=AUDIENCE, jwks_uri=minter.jwks_uri, **settings)
        made.append(Api(auth))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_item10_the_dependency_works_on_this_fastapi(api, minter):
    """On every FastAPI the package declares (fastapi>=0.100): the guarded routes answer 401,
    200 and 403, never 422, and the OpenAPI document gives them no query parameter."""
    get = api()
    version = fastapi.__version__
    status, body, head = get("/api/private", {})
    assert (status, (body or {}).get("code")) == (401, "authorization_header_missing"), (version, status, body)
    assert head == NO_TOKEN_CHALLENGE
    assert get("/api/private", {"Authorization": f"Bearer {minter.token()}"})[:2] == (200, {"sub": "client-1@clients"})
    assert get("/api/private-scoped", {"Authorization": f"Bearer {minter.token()}"})[0] == 200, version
    status, body, head = get("/api/private-scoped", {"Authorization": f"Bearer {minter.token(scope='openid')}"})
    assert (status, body) == (403, {"code": "Unauthorized", "description": "You don't have access to this resource"})
    assert head == challenge(bearer=error("insufficient_scope", "You don't have access to this resource")
                             + ', scope="read:messages"')
    paths = get.app.openapi()["paths"]
    for path in ("/api/private", "/api/private-scoped"):
        assert not paths[path]["get"].get("parameters"), (version, paths[path]["get"])
        # (the scopes listed beside the scheme vary with the version: not checked here)
        assert [list(entry) for entry in paths[path]["get"]["security"]] == [["jwtguard"]], paths[path]["get"]


def test_item9_an_unsupported_scheme_is_401_without_error(api, minter):
    check_unsupported_schemes(api(), api(dpop="off"), minter.token())


def test_item4_the_proof_url_comes_only_from_a_host_that_is_host_port(api, minter):
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    get = api()
    check_proof_url_host(get, client, token, refused=(401, "invalid_dpop_proof"), bearer=minter.token(),
                         bearer_status=200)
    # Two Host lines give no URL either (which would Starlette take?); without Host, the
    # server's own address makes the URL.
    url = "http://api.example/api/private"
    status, body, _ = get("/api/private", {"Authorization": f"DPoP {token}", "DPoP": client.proof(url=url, token=token)},
                          extra=(("Host", "api.example"),))
    assert (status, (body or {}).get("code")) == (401, "invalid_dpop_proof"), (status, body)
    url = "http://127.0.0.1:8000/api/private"
    assert get("/api/private", {"Authorization": f"DPoP {token}", "DPoP": client.proof(url=url, token=token)},
               host=None)[0] == 200


def test_item17_dpop_origins_setting(api, minter, monkeypatch):
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    check_pinned_origins(api(dpop_origins=["http://api.example"]), client, token)
    # From the environment (JWTGuard() with no settings in code), space-separated.
    monkeypatch.setenv("JWTGUARD_ISSUER", MINTED_ISSUER)
    monkeypatch.setenv("JWTGUARD_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("JWTGUARD_JWKS_URI", minter.jwks_uri)
    monkeypatch.setenv("JWTGUARD_DPOP_ORIGINS", "https://api.example http://api.example")
    check_pinned_origins(api(from_env=True), client, token)
    # Not an origin: the verifier is not built, and the message names the value.
    with pytest.raises(ValueError, match="dpop origin 'api.example'"):
        api(dpop_origins=["api.example"])("/api/private", {})


def test_the_proof_url_is_the_raw_request_target(api, minter):
    """The proof URL's path is the ASGI `raw_path` (the target as sent), not Starlette's
    `request.url`, which pastes the decoded path: on Starlette 0.27 a proof for /files/public
    was taken at /files/public%3Fsecret (`public?secret` served), and on every version one
    for /api/private at /api/files%2F..%2Fprivate."""
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    get = api()
    check_proof_url_is_the_raw_target(get, client, token)
    # A server that gives no raw_path (optional in ASGI): the decoded path, encoded again.
    check_proof_url_is_the_raw_target(lambda *args, **kwargs: get(*args, raw_path=None, **kwargs), client, token,
                                      raw=False)
    # Under a root_path (uvicorn --root-path /v1 behind a proxy that strips /v1) the client
    # addressed /v1/...: uvicorn puts the prefix in path and raw_path (what Starlette 0.33 and
    # later route), older servers in neither (what Starlette 0.27 routes).
    routed = []
    for in_path in (True, False):
        answers = [get("/api/files/public", dpop_call(client, token, "http://api.example" + proved), root_path="/v1",
                       root_in_path=in_path)[:2] for proved in ("/v1/api/files/public", "/api/files/public")]
        if answers[0][0] != 404:
            assert answers == [(200, {"file": "public"}), (401, {"code": "invalid_dpop_proof",
                               "description": "DPoP proof is for another URL (htu)"})], (in_path, answers)
            routed.append(in_path)
    assert routed, "neither root_path convention routed"


def test_item16_two_authorization_lines_are_malformed(api, minter):
    """Counted from the ASGI headers (they were joined with ", ", and a scheme jwtguard does
    not take first made it 401)."""
    get = api()
    check_two_authorization_lines(lambda path, lines: get(path, {}, extra=tuple(lines)), minter.token())
