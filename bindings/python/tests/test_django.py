"""jwtguard.django in process, through Django's test client: review 3 (issue 23) items 4, 9
and 17 (framework_checks.py), with the settings an application writes (JWTGUARD = {...}).
`make python-floor-test` runs this module on the oldest Django declared too.

Django is configured once per process, here (no other module of the suite configures it in
process); each test's JWTGUARD comes through override_settings, and a new test client builds
the middleware, and so the verifier, under it."""

from __future__ import annotations

import json

import django
import pytest
from django.conf import settings

from conftest import AUDIENCE, MINTED_ISSUER
from dpop import DpopClient
from framework_checks import (
    asgi_call,
    check_pinned_origins,
    check_proof_url_host,
    check_proof_url_is_the_raw_target,
    check_two_authorization_lines,
    check_unsupported_schemes,
    dpop_call,
)

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        SECRET_KEY="the tests keep no sessions",
        MIDDLEWARE=["jwtguard.django.JWTGuardMiddleware"],
        JWTGUARD={},
        LOGGING_CONFIG=None,
        USE_TZ=True,
    )
    django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from jwtguard.django import json_response, requires_auth, requires_scope  # noqa: E402


@requires_auth
def private(request: HttpRequest) -> HttpResponse:
    return json_response({"sub": request.jwt_claims["sub"]})  # type: ignore[attr-defined]


@requires_scope("read:messages")
def scoped(request: HttpRequest) -> HttpResponse:
    return json_response({"sub": request.jwt_claims["sub"]})  # type: ignore[attr-defined]


@requires_auth
def files(request: HttpRequest, name: str) -> HttpResponse:
    return json_response({"file": name})


urlpatterns = [path("api/private", private), path("api/private-scoped", scoped), path("api/files/<path:name>", files)]


def api_get(minter, raw_uri=None, **own):
    """framework_checks' `get` for the app with JWTGUARD = {the minter's issuer, **own}.
    Django's test client sets no REQUEST_URI (nor does its runserver); `raw_uri` names the
    key in which to give the target as sent, as a server does: "REQUEST_URI" (uWSGI,
    mod_wsgi, gunicorn) or "RAW_URI" (gunicorn). A header given as a list of lines is
    joined with "," as a WSGI server joins repeated lines."""
    jwtguard_settings = {"ISSUER": MINTED_ISSUER, "AUDIENCE": AUDIENCE, "JWKS_URI": minter.jwks_uri, **own}

    def get(path, headers, host="api.example"):
        meta = {}
        for name, value in (headers.items() if isinstance(headers, dict) else headers):
            key = "HTTP_" + name.upper().replace("-", "_")
            meta[key] = f"{meta[key]},{value}" if key in meta else value
        if raw_uri:
            meta[raw_uri] = path
        with override_settings(JWTGUARD=jwtguard_settings):
            response = Client().get(path, HTTP_HOST=host, **meta)
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        return response.status_code, body, response.headers.get("WWW-Authenticate")

    return get


def test_item9_an_unsupported_scheme_is_401_without_error(minter):
    check_unsupported_schemes(api_get(minter), api_get(minter, DPOP="off"), minter.token())


def test_item4_the_proof_url_comes_only_from_a_host_that_is_host_port(minter):
    """Django refuses such a Host itself (request.get_host(): 400 DisallowedHost, even with
    ALLOWED_HOSTS = ["*"]) before jwtguard checks it as the other hosts do."""
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    get = api_get(minter)
    check_proof_url_host(get, client, token, refused=(400, None), bearer=minter.token(), bearer_status=400)
    # A Host Django lets through (its pattern takes any port) but that is not host[:port]:
    # jwtguard's own check gives no URL, so the proof is refused as for another URL, and a
    # bearer token, which needs no URL, passes.
    url = "http://api.example:99999/api/private"
    status, body, _ = get("/api/private", {"Authorization": f"DPoP {token}", "DPoP": client.proof(url=url, token=token)},
                          host="api.example:99999")
    assert (status, (body or {}).get("code")) == (401, "invalid_dpop_proof"), (status, body)
    assert get("/api/private", {"Authorization": f"Bearer {minter.token()}"}, host="api.example:99999")[0] == 200


def test_item17_dpop_origins_setting(minter):
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    check_pinned_origins(api_get(minter, DPOP_ORIGINS=["http://api.example"]), client, token)
    check_pinned_origins(api_get(minter, DPOP_ORIGINS="https://api.example http://api.example"), client, token)
    check_pinned_origins(api_get(minter, OPTIONS={"dpop_origins": ["http://api.example"]}), client, token)
    # Not an origin: the middleware (and its verifier) is not built, and the message says why.
    with pytest.raises(ValueError, match="dpop origin 'http://api.example/api'"):
        api_get(minter, DPOP_ORIGINS=["http://api.example/api"])("/api/private", {})


def asgi_get(minter, **own):
    """framework_checks' `get` through Django's ASGI handler (the scope made as uvicorn makes
    it, raw_path included); a header given as a list of lines stays several lines."""
    from django.core.handlers.asgi import ASGIHandler

    jwtguard_settings = {"ISSUER": MINTED_ISSUER, "AUDIENCE": AUDIENCE, "JWKS_URI": minter.jwks_uri, **own}

    def get(path, headers, host="api.example", **scope):
        lines = [("Host", host)] + (list(headers.items()) if isinstance(headers, dict) else headers)
        with override_settings(JWTGUARD=jwtguard_settings):
            status, head, body = asgi_call(ASGIHandler(), path, lines, **scope)
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        return status, parsed, (head.get("www-authenticate") or [None])[0]

    return get


def test_the_proof_url_is_the_raw_request_target(minter):
    """The proof URL's path is the raw target (WSGI REQUEST_URI / RAW_URI, ASGI raw_path),
    not `build_absolute_uri()`, whose path is the decoded one encoded again: `%2F..%2F` became
    a dot segment there (a proof for /api/private taken at /api/files%2F..%2Fprivate).
    Without a raw target (Django's runserver and test client set none) the decoded path is
    encoded again, and one that holds a dot segment gives no URL."""
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    check_proof_url_is_the_raw_target(api_get(minter, raw_uri="REQUEST_URI"), client, token)
    check_proof_url_is_the_raw_target(api_get(minter, raw_uri="RAW_URI"), client, token)
    check_proof_url_is_the_raw_target(api_get(minter), client, token, raw=False)
    get = asgi_get(minter)
    check_proof_url_is_the_raw_target(get, client, token)
    check_proof_url_is_the_raw_target(lambda *args, **kwargs: get(*args, raw_path=None, **kwargs), client, token,
                                      raw=False)
    # Under uvicorn --root-path /v1 (behind a proxy that strips it) the client addressed /v1/...
    answer = get("/api/files/public", dpop_call(client, token, "http://api.example/v1/api/files/public"),
                 root_path="/v1")
    assert answer[:2] == (200, {"file": "public"}), answer
    answer = get("/api/files/public", dpop_call(client, token, "http://api.example/api/files/public"), root_path="/v1")
    assert answer[:2] == (401, {"code": "invalid_dpop_proof", "description": "DPoP proof is for another URL (htu)"})


def test_item16_two_authorization_lines_are_malformed(minter):
    """Under WSGI the server has joined them with ",": a comma in the value is refused as two
    lines; under ASGI they are counted. (A scheme jwtguard does not take first made it 401.)"""
    token = minter.token()
    get = api_get(minter)
    check_two_authorization_lines(lambda path, lines: get(path, lines), token)
    get = asgi_get(minter)
    check_two_authorization_lines(lambda path, lines: get(path, lines), token)
