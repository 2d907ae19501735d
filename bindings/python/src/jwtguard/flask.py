"""Flask integration: ``requires_auth`` and ``requires_scope`` decorators, configured from
``app.config``, with the quickstart's error bodies and RFC 6750 ``WWW-Authenticate`` headers.

Configuration (the quickstart's names, or jwtguard's own):

* ``AUTH0_DOMAIN`` and ``API_IDENTIFIER``: issuer ``https://DOMAIN/``, audience the API.
* ``JWTGUARD_ISSUER``, ``JWTGUARD_AUDIENCE`` (each a string or a list), ``JWTGUARD_JWKS_URI``
  (optional: discovery from the issuer), ``JWTGUARD_ALGORITHMS``, ``JWTGUARD_LEEWAY``,
  ``JWTGUARD_DPOP`` (``off``, ``allowed`` or ``required``), ``JWTGUARD_DPOP_ORIGINS`` (the
  public origins the API answers for, a list or a space-separated string:
  ``https://api.example``; a DPoP proof for any other origin is refused),
  ``JWTGUARD_REALM``, ``JWTGUARD_OPTIONS`` (a dict of extra :class:`jwtguard.Verifier`
  options).

DPoP proofs are checked against the URL the request names: ``request.scheme``, its ``Host``
(behind a proxy, werkzeug's ``ProxyFix`` puts ``X-Forwarded-Proto`` and ``X-Forwarded-Host``
there), and the raw request target as the client sent it, percent-encoding intact: the WSGI
server's ``RAW_URI`` or ``REQUEST_URI`` (werkzeug's server and test client, gunicorn, uWSGI,
mod_wsgi set them), never the decoded path (``request.base_url``, in which ``%2F..%2F``
becomes a dot segment; see :func:`jwtguard._http.proof_path`, which also keeps a
``SCRIPT_NAME`` prefix the target lacks, as from ``ProxyFix`` x_prefix). Without either key
the decoded path is percent-encoded again. A host that is not ``host[:port]``
(:func:`jwtguard.is_authority`), a target that does not decode to the path Flask routes, or
one with a ``.`` or ``..`` segment gives no URL, and every proof is refused.

Two ``Authorization`` lines are a malformed request (400 ``invalid_header``), as in every
jwtguard host; a WSGI server hands them over joined with a comma, so a comma that is not
between a scheme's ``name=value`` parameters is read as a second line
(:func:`jwtguard._http.joined_lines`).

Verified claims are available as :data:`current_claims` and ``flask.g.jwt_claims``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, TypeVar, cast

from flask import Flask, Response, current_app, g, has_request_context, jsonify, request
from werkzeug.local import LocalProxy

from . import AuthError, Verifier, has_scope, is_authority
from ._http import (
    build_verifier,
    insufficient_scope,
    joined_lines,
    proof_path,
    refusal,
    several_lines,
    wsgi_raw_target,
    wsgi_text,
)

__all__ = ["JWTGuard", "requires_auth", "requires_scope", "current_claims", "AuthError"]

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION = "jwtguard"

current_claims: Dict[str, Any] = cast(Dict[str, Any], LocalProxy(lambda: g.get("jwt_claims")))
"""The claims of the token verified for the current request (``None`` outside one)."""


class JWTGuard:
    """The extension object, for app factories: ``JWTGuard(app)`` or ``init_app(app)``.

    It builds one :class:`jwtguard.Verifier` per app from its config (on first use) and turns
    :class:`AuthError` into JSON responses.
    """

    def __init__(self, app: Optional[Flask] = None, **verifier_options: Any):
        self.verifier_options = verifier_options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self
        app.register_error_handler(AuthError, self.handle_error)

    def verifier(self, app: Flask) -> Verifier:
        existing = app.extensions.get(_EXTENSION + ".verifier")
        if existing is None:
            existing = _build_verifier(app, self.verifier_options)
            app.extensions[_EXTENSION + ".verifier"] = existing
        return existing

    @staticmethod
    def handle_error(error: AuthError) -> Response:
        verifier: Optional[Verifier] = None
        authorization: Optional[str] = None
        if has_request_context():
            verifier = current_app.extensions.get(_EXTENSION + ".verifier")
            authorization = request.headers.get("Authorization")
        realm = current_app.config.get("JWTGUARD_REALM", "api")
        status, body, headers = refusal(error, realm, verifier, authorization)
        response = jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        return response


def _build_verifier(app: Flask, extra: Dict[str, Any]) -> Verifier:
    return build_verifier(app.config.get, extra)


def _extension() -> JWTGuard:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ext: Optional[JWTGuard] = app.extensions.get(_EXTENSION)
    if ext is None:
        ext = JWTGuard(app)
    return ext


def _authenticate() -> Dict[str, Any]:
    claims: Optional[Dict[str, Any]] = g.get("jwt_claims")
    if claims is None:
        ext = _extension()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        authorization = request.headers.get("Authorization")
        # The verifier first: a refusal's challenge names what it accepts (DPoP too).
        verifier = ext.verifier(app)
        if joined_lines(authorization):
            raise several_lines()
        claims = verifier.verify_authorization(
            authorization,
            dpop=request.headers.getlist("DPoP") or None,
            method=request.method,
            url=_proof_url(),
        )
        g.jwt_claims = claims
    return claims


def _proof_url() -> str:
    """The URL a DPoP proof must name, or ``""`` (no URL: every proof refused)."""
    # DPoP (RFC 9449): the proof is checked against the URL the client addressed. Behind a
    # proxy, let werkzeug's ProxyFix apply X-Forwarded-Proto and X-Forwarded-Host first.
    # The URL's host is the request's Host (as ProxyFix left it), pasted in by werkzeug as
    # it came before 3.1.7: one that is not host[:port] ("api.example/x") would name
    # another URL, so it gives none, which no proof matches.
    host = request.host
    if not is_authority(host):
        return ""
    environ = request.environ
    mount = wsgi_text(environ.get("SCRIPT_NAME", ""))
    path = proof_path(wsgi_raw_target(environ), [(mount + wsgi_text(environ.get("PATH_INFO", "")), mount)])
    return "" if path is None else f"{request.scheme}://{host}{path}"


def requires_auth(view: F) -> F:
    """Require a valid access token; the claims land in :data:`current_claims`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            _authenticate()
        except AuthError as error:
            return JWTGuard.handle_error(error)
        return view(*args, **kwargs)

    return cast(F, wrapper)


def requires_scope(scope: str) -> Callable[[F], F]:
    """Require a valid access token granting ``scope`` (in ``scope``, ``scp`` or
    ``permissions``); 403 ``insufficient_scope`` otherwise. Implies :func:`requires_auth`."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                claims = _authenticate()
                if not has_scope(claims, scope):
                    raise insufficient_scope(scope)
            except AuthError as error:
                return JWTGuard.handle_error(error)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
