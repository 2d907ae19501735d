"""jwtguard.flask through Flask's test client: every status, body and WWW-Authenticate header,
config from the quickstart's names and from jwtguard's, the app-factory extension."""

from __future__ import annotations

import pytest
from flask import Flask, g, jsonify

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER
from dpop import DpopClient, challenge, error
from framework_checks import (
    check_pinned_origins,
    check_proof_url_host,
    check_proof_url_is_the_raw_target,
    check_two_authorization_lines,
    check_unsupported_schemes,
    dpop_call,
)
from jwtguard.flask import JWTGuard, current_claims, requires_auth, requires_scope


def make_app(config: dict) -> Flask:
    app = Flask("t")
    app.config.update(config)
    JWTGuard(app)

    @app.route("/private")
    @requires_auth
    def private():
        return jsonify(sub=current_claims["sub"], same=g.jwt_claims is current_claims._get_current_object())

    @app.route("/scoped")
    @requires_scope("read:messages")
    def scoped():
        return jsonify(ok=True)

    @app.route("/stacked")
    @requires_auth
    @requires_scope("read:messages")
    def stacked():
        return jsonify(ok=True)

    return app


@pytest.fixture()
def client(minter):
    app = make_app(
        {"JWTGUARD_ISSUER": MINTED_ISSUER, "JWTGUARD_AUDIENCE": AUDIENCE, "JWTGUARD_JWKS_URI": minter.jwks_uri}
    )
    return app.test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_valid_tokens(client, minter):
    r = client.get("/private", headers=bearer(minter.token()))
    assert r.status_code == 200
    assert r.get_json() == {"sub": "client-1@clients", "same": True}
    assert client.get("/scoped", headers=bearer(minter.token())).status_code == 200
    assert client.get("/stacked", headers=bearer(minter.token())).status_code == 200
    assert client.get("/scoped", headers=bearer(minter.token(scope=None, permissions=["read:messages"]))).status_code == 200


def test_missing_token(client):
    r = client.get("/private")
    assert r.status_code == 401
    assert r.get_json() == {"code": "authorization_header_missing", "description": "Authorization header is expected"}
    assert r.headers["WWW-Authenticate"] == challenge()


def test_invalid_and_expired_tokens(client, minter):
    r = client.get("/private", headers=bearer(minter.token(exp=1000)))
    assert r.status_code == 401
    assert r.get_json()["code"] == "token_expired"
    assert r.headers["WWW-Authenticate"] == challenge(bearer=error("invalid_token", "Token is expired"))
    token = minter.token()
    r = client.get("/private", headers=bearer(token[:-6] + "AAAAAA"))
    assert (r.status_code, r.get_json()["code"]) == (401, "invalid_token")
    r = client.get("/private", headers=bearer(minter.token(aud="https://other")))
    assert (r.status_code, r.get_json()["code"]) == (401, "invalid_claims")
    # Another scheme: 401 as the quickstart answers it, a challenge without error (RFC 6750).
    r = client.get("/private", headers={"Authorization": f"Basic {token}"})
    assert (r.status_code, r.get_json()["code"]) == (401, "invalid_header")
    assert r.headers["WWW-Authenticate"] == challenge()
    r = client.get("/private", headers={"Authorization": f"Bearer {token} {token}"})
    assert (r.status_code, r.get_json()["code"]) == (400, "invalid_header")
    assert 'error="invalid_request"' in r.headers["WWW-Authenticate"]


def test_missing_scope(client, minter):
    for path in ("/scoped", "/stacked"):
        r = client.get(path, headers=bearer(minter.token(scope="openid")))
        assert r.status_code == 403
        assert r.get_json() == {"code": "Unauthorized", "description": "You don't have access to this resource"}
        assert r.headers["WWW-Authenticate"] == challenge(
            bearer=error("insufficient_scope", "You don't have access to this resource") + ', scope="read:messages"'
        )


def test_keys_unavailable_is_503():
    app = make_app(
        {
            "JWTGUARD_ISSUER": MINTED_ISSUER,
            "JWTGUARD_AUDIENCE": AUDIENCE,
            "JWTGUARD_JWKS_URI": "http://127.0.0.1:9/jwks",
            "JWTGUARD_OPTIONS": {"timeouts": (0.5, 0.5)},
        }
    )
    from minter import Minter  # a token whose keys cannot be fetched

    stranger = Minter()
    try:
        r = app.test_client().get("/private", headers=bearer(stranger.token()))
    finally:
        stranger.close()
    assert r.status_code == 503
    assert r.get_json()["code"] == "jwks_unavailable"
    assert r.headers["Retry-After"] == "5"


def test_quickstart_config_names(minter):
    # AUTH0_DOMAIN + API_IDENTIFIER: issuer https://DOMAIN/ (keys from a fixed JWKS here).
    app = make_app(
        {"AUTH0_DOMAIN": "tenant.example", "API_IDENTIFIER": AUDIENCE, "JWTGUARD_OPTIONS": {"jwks": minter.jwks}}
    )
    assert app.test_client().get("/private", headers=bearer(minter.token())).status_code == 200
    r = app.test_client().get("/private", headers=bearer(minter.token(iss="https://tenant.example")))
    assert (r.status_code, r.get_json()["code"]) == (401, "invalid_claims")


def test_unconfigured_app_says_what_is_missing():
    app = make_app({})
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="AUTH0_DOMAIN"):
        app.test_client().get("/private", headers=bearer("x.y.z"))


def test_extension_for_app_factories(minter):
    guard = JWTGuard(jwks=minter.jwks)
    app = Flask("factory")
    app.config.update(JWTGUARD_ISSUER=MINTED_ISSUER, JWTGUARD_AUDIENCE=AUDIENCE)
    guard.init_app(app)

    @app.route("/p")
    @requires_auth
    def p():
        return jsonify(ok=True)

    assert app.test_client().get("/p", headers=bearer(minter.token())).status_code == 200
    assert isinstance(guard.verifier(app), jwtguard.Verifier)


# Review 3 (issue 23), through the app on /api/... as the other frameworks' tests use it. These
# run on the oldest Flask and Werkzeug declared too (make python-floor-test): Werkzeug before
# 3.1.7 hands Flask the Host header as it came.


def api_get(minter, raw_uri=True, script_name="", **config):
    """framework_checks' `get` for a Flask app of the minter's tokens with these settings.
    Werkzeug's test client sets REQUEST_URI and RAW_URI to the target as given, as its server
    and gunicorn do; `raw_uri=False` takes them out (a WSGI server that sets neither).
    `script_name` is put in SCRIPT_NAME, as ProxyFix does with X-Forwarded-Prefix."""
    app = Flask("api")
    app.config.update(JWTGUARD_ISSUER=MINTED_ISSUER, JWTGUARD_AUDIENCE=AUDIENCE, JWTGUARD_JWKS_URI=minter.jwks_uri,
                      **config)
    JWTGuard(app)

    @app.route("/api/private")
    @requires_auth
    def private():
        return jsonify(sub=current_claims["sub"])

    @app.route("/api/private-scoped")
    @requires_scope("read:messages")
    def scoped():
        return jsonify(ok=True)

    @app.route("/api/files/<path:name>")
    @requires_auth
    def files(name):
        return jsonify(file=name)

    wsgi_app = app.wsgi_app

    def server(environ, start_response):
        if not raw_uri:
            del environ["REQUEST_URI"], environ["RAW_URI"]
        if script_name:
            environ["SCRIPT_NAME"] = script_name + environ["SCRIPT_NAME"]
        return wsgi_app(environ, start_response)

    app.wsgi_app = server
    client = app.test_client()

    def get(path, headers, host="api.example"):
        # A list of lines: a name may come more than once (the test client joins them with
        # ", " as a WSGI server joins them with ",").
        lines = list(headers.items()) if isinstance(headers, dict) else headers
        r = client.get(path, headers=lines, environ_overrides={"HTTP_HOST": host})
        return r.status_code, r.get_json(silent=True), r.headers.get("WWW-Authenticate")

    return get


def test_item9_an_unsupported_scheme_is_401_without_error(minter):
    check_unsupported_schemes(api_get(minter), api_get(minter, JWTGUARD_DPOP="off"), minter.token())


def test_item4_the_proof_url_comes_only_from_a_host_that_is_host_port(minter):
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    check_proof_url_host(api_get(minter), client, token, refused=(401, "invalid_dpop_proof"),
                         bearer=minter.token(), bearer_status=200)


def test_item17_dpop_origins_setting(minter):
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    # A space-separated string in the config, a list through the extension's options.
    check_pinned_origins(api_get(minter, JWTGUARD_DPOP_ORIGINS="http://api.example https://api.example"), client, token)
    check_pinned_origins(api_get(minter, JWTGUARD_OPTIONS={"dpop_origins": ["http://api.example"]}), client, token)
    # Not an origin: the app refuses to build its verifier, saying which value.
    get = api_get(minter, JWTGUARD_DPOP_ORIGINS=["http://api.example/api"], PROPAGATE_EXCEPTIONS=True)
    with pytest.raises(ValueError, match="dpop origin 'http://api.example/api'"):
        get("/api/private", {})


def test_the_proof_url_is_the_raw_request_target(minter):
    """The proof URL's path is the WSGI server's REQUEST_URI / RAW_URI (the target as sent),
    not `request.base_url`, which encodes the decoded path again: `%2F..%2F` became a dot
    segment there, and on Werkzeug 3 a decoded `%` stayed one (a proof for /a%3Fb was taken
    at /a%253Fb)."""
    client = DpopClient("ES256")
    token = minter.token(cnf={"jkt": client.jkt()})
    check_proof_url_is_the_raw_target(api_get(minter), client, token)
    check_proof_url_is_the_raw_target(api_get(minter, raw_uri=False), client, token, raw=False)
    # Mounted under a prefix the raw target lacks (ProxyFix x_prefix): the URL has it.
    get = api_get(minter, script_name="/v1")
    assert get("/api/files/public", dpop_call(client, token, "http://api.example/v1/api/files/public"))[:2] == (
        200, {"file": "public"})
    assert get("/api/files/public", dpop_call(client, token, "http://api.example/api/files/public"))[0] == 401


def test_item16_two_authorization_lines_are_malformed(minter):
    """A WSGI server joins the lines with a comma: a comma in the value is refused as two
    lines (Werkzeug's test client joins them with ", ", its server and gunicorn with ",";
    a scheme jwtguard does not take first made it 401)."""
    get = api_get(minter)
    check_two_authorization_lines(lambda path, lines: get(path, lines), minter.token())
    # As a WSGI server joins them.
    status, body, _ = get("/api/private", {"Authorization": f"Basic dXNlcjpwYXNz,Bearer {minter.token()}"})
    assert (status, body["code"]) == (400, "invalid_header")
