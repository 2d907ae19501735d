"""jwtguard.fastapi in process, through the ASGI interface itself (no HTTP client library, so
any header goes through as written): the dependency on this FastAPI version (review 3, item
10: FastAPI 0.100 to 0.120 took `Request` and `SecurityScopes` of the dependency's postponed
annotations for query parameters and answered 422 on every protected route), and review 3's
items 4, 9 and 17 (framework_checks.py). `make python-floor-test` runs this module on the
oldest FastAPI and Starlette declared too.

(No `from __future__ import annotations` here either: the routes are written as an
application would write them.)"""

import asyncio
import json
from typing import Any, Dict, List, Optional, Tuple

import fastapi
import pytest
from fastapi import Depends, FastAPI, Security

from conftest import AUDIENCE, MINTED_ISSUER
from dpop import NO_TOKEN_CHALLENGE, DpopClient, challenge, error
from framework_checks import check_pinned_origins, check_proof_url_host, check_unsupported_schemes
from jwtguard.fastapi import JWTGuard


def call(app: Any, path: str, headers: List[Tuple[str, str]], scheme: str = "http") -> Tuple[int, Dict[str, List[str]], bytes]:
    """One GET through the app's ASGI interface: (status, {lowercase name: [values]}, body)."""
    path_part, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": scheme,
        "path": path_part,
        "raw_path": path_part.encode("ascii"),
        "root_path": "",
        "query_string": query.encode("ascii"),
        "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    answer: Dict[str, Any] = {"status": None, "headers": {}, "body": b""}

    async def run() -> None:
        delivered = False

        async def receive() -> Dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            raise AssertionError("unreachable")

        async def send(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    answer["headers"].setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await app(scope, receive, send)

    asyncio.run(run())
    return answer["status"], answer["headers"], answer["body"]


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

    return app


class Api:
    """framework_checks' `get` for a FastAPI app guarded by `auth`; closes its verifier."""

    def __init__(self, auth: JWTGuard):
        self.auth = auth
        self.app = make_app(auth)

    def __call__(self, path: str, headers: Dict[str, str], host: Optional[str] = "api.example",
                 extra: Tuple[Tuple[str, str], ...] = ()) -> Tuple[int, Optional[dict], Optional[str]]:
        lines = ([("Host", host)] if host is not None else []) + list(extra) + list(headers.items())
        status, head, body = call(self.app, path, lines)
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
