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
from framework_checks import check_pinned_origins, check_proof_url_host, check_unsupported_schemes

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


urlpatterns = [path("api/private", private), path("api/private-scoped", scoped)]


def api_get(minter, **own):
    """framework_checks' `get` for the app with JWTGUARD = {the minter's issuer, **own}."""
    jwtguard_settings = {"ISSUER": MINTED_ISSUER, "AUDIENCE": AUDIENCE, "JWKS_URI": minter.jwks_uri, **own}

    def get(path, headers, host="api.example"):
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
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
