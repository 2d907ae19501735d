"""Flask integration: ``requires_auth`` and ``requires_scope`` decorators, configured from
``app.config``, with the quickstart's error bodies and RFC 6750 ``WWW-Authenticate`` headers.

Configuration (the quickstart's names, or jwtguard's own):

* ``AUTH0_DOMAIN`` and ``API_IDENTIFIER``: issuer ``https://DOMAIN/``, audience the API.
* ``JWTGUARD_ISSUER``, ``JWTGUARD_AUDIENCE`` (each a string or a list), ``JWTGUARD_JWKS_URI``
  (optional: discovery from the issuer), ``JWTGUARD_ALGORITHMS``, ``JWTGUARD_LEEWAY``,
  ``JWTGUARD_REALM``, ``JWTGUARD_OPTIONS`` (a dict of extra :class:`jwtguard.Verifier`
  options).

Verified claims are available as :data:`current_claims` and ``flask.g.jwt_claims``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, TypeVar, cast

from flask import Flask, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

from . import STATUS_INSUFFICIENT_SCOPE, STATUS_KEYS_UNAVAILABLE, AuthError, Verifier, has_scope

__all__ = ["JWTGuard", "requires_auth", "requires_scope", "current_claims", "AuthError"]

F = TypeVar("F", bound=Callable[..., Any])

_EXTENSION = "jwtguard"

current_claims: Dict[str, Any] = cast(Dict[str, Any], LocalProxy(lambda: g.get("jwt_claims")))
"""The claims of the token verified for the current request (``None`` outside one)."""


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _challenge(error: AuthError, realm: str, scope: Optional[str] = None) -> str:
    parts = [f'realm="{_quote(realm)}"']
    if error.error:
        parts.append(f'error="{error.error}"')
        parts.append(f'error_description="{_quote(error.description)}"')
    if scope:
        parts.append(f'scope="{_quote(scope)}"')
    return "Bearer " + ", ".join(parts)


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
    def handle_error(error: AuthError):
        realm = current_app.config.get("JWTGUARD_REALM", "api")
        response = jsonify(error.to_dict())
        response.status_code = error.status_code
        if error.status_code in (400, 401, 403):
            scope = getattr(error, "scope", None)
            response.headers["WWW-Authenticate"] = _challenge(error, realm, scope)
        if error.status == STATUS_KEYS_UNAVAILABLE:
            response.headers["Retry-After"] = "5"
        return response


def _build_verifier(app: Flask, extra: Dict[str, Any]) -> Verifier:
    config = app.config
    issuer = config.get("JWTGUARD_ISSUER")
    audience = config.get("JWTGUARD_AUDIENCE") or config.get("API_IDENTIFIER")
    if not issuer and config.get("AUTH0_DOMAIN"):
        issuer = f"https://{config['AUTH0_DOMAIN']}/"
    if not issuer or not audience:
        raise RuntimeError(
            "jwtguard.flask: set AUTH0_DOMAIN and API_IDENTIFIER, or JWTGUARD_ISSUER and "
            "JWTGUARD_AUDIENCE, in app.config"
        )
    options: Dict[str, Any] = dict(config.get("JWTGUARD_OPTIONS") or {})
    options.update(extra)
    algorithms = config.get("JWTGUARD_ALGORITHMS", ("RS256",))
    if isinstance(algorithms, str):
        algorithms = algorithms.replace(",", " ").split()
    return Verifier(
        issuer,
        audience,
        jwks_uri=config.get("JWTGUARD_JWKS_URI") or None,
        algorithms=algorithms,
        leeway=int(config.get("JWTGUARD_LEEWAY", 60)),
        **options,
    )


def _extension() -> JWTGuard:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ext = app.extensions.get(_EXTENSION)
    if ext is None:
        ext = JWTGuard(app)
    return ext


def _authenticate() -> Dict[str, Any]:
    claims = g.get("jwt_claims")
    if claims is None:
        ext = _extension()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        claims = ext.verifier(app).verify_authorization(request.headers.get("Authorization"))
        g.jwt_claims = claims
    return claims


def requires_auth(view: F) -> F:
    """Require a valid access token; the claims land in :data:`current_claims`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
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
        def wrapper(*args: Any, **kwargs: Any):
            try:
                claims = _authenticate()
                if not has_scope(claims, scope):
                    error = AuthError(STATUS_INSUFFICIENT_SCOPE)
                    error.scope = scope  # type: ignore[attr-defined]
                    raise error
            except AuthError as error:
                return JWTGuard.handle_error(error)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
