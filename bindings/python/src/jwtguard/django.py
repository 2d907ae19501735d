"""Django integration: a middleware that holds the verifier and view decorators that require a
token, with the quickstart's error bodies and RFC 6750 ``WWW-Authenticate`` headers.

    # settings.py
    MIDDLEWARE = [..., "jwtguard.django.JWTGuardMiddleware"]
    JWTGUARD = {"ISSUER": "https://TENANT/", "AUDIENCE": "https://api.example.com"}
    # or the quickstart's AUTH0_DOMAIN and API_IDENTIFIER settings

    # views.py
    from jwtguard.django import requires_auth, requires_scope

    @requires_scope("read:messages")
    def private_scoped(request):
        return JsonResponse({"sub": request.jwt_claims["sub"]})

``JWTGUARD`` keys: ``ISSUER`` and ``AUDIENCE`` (each a string or a list), ``JWKS_URI``
(optional: discovery from the issuer), ``ALGORITHMS``, ``LEEWAY``, ``DPOP`` (``off``,
``allowed`` or ``required``), ``DPOP_ORIGINS`` (the public origins the API answers for, a list
or a space-separated string: ``https://api.example``; a DPoP proof for any other origin is
refused), ``REALM`` (of ``WWW-Authenticate``, default ``api``), ``OPTIONS`` (a dict of extra
:class:`jwtguard.Verifier` options).

DPoP proofs are checked against ``request.build_absolute_uri()``: its host is
``request.get_host()`` (checked against ``ALLOWED_HOSTS``; ``X-Forwarded-Host`` under
``USE_X_FORWARDED_HOST``), and one that is not ``host[:port]`` (:func:`jwtguard.is_authority`)
gives no URL, and every proof is refused. The verifier is built once per process, when the
middleware is. Decorated views may be sync or async; an async view's verification runs in a
worker thread (it may wait for keys being fetched). ``request.jwt_claims`` holds the claims of
a verified request, ``None`` before.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, TypeVar, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from . import AuthError, Verifier, has_scope, is_authority
from ._http import build_verifier, insufficient_scope, json_bytes, refusal

__all__ = ["JWTGuardMiddleware", "requires_auth", "requires_scope", "json_response", "AuthError"]

F = TypeVar("F", bound=Callable[..., Any])

_KEYS = {
    "JWTGUARD_ISSUER": "ISSUER",
    "JWTGUARD_AUDIENCE": "AUDIENCE",
    "JWTGUARD_JWKS_URI": "JWKS_URI",
    "JWTGUARD_ALGORITHMS": "ALGORITHMS",
    "JWTGUARD_LEEWAY": "LEEWAY",
    "JWTGUARD_DPOP": "DPOP",
    "JWTGUARD_DPOP_ORIGINS": "DPOP_ORIGINS",
    "JWTGUARD_OPTIONS": "OPTIONS",
}


def json_response(value: Any, status: int = 200) -> HttpResponse:
    """JSON written as every jwtguard host writes it (sorted keys, compact, a final newline),
    so one answer is the same bytes from Django, Flask, the C server and nginx."""
    return HttpResponse(json_bytes(value), status=status, content_type="application/json")


def _settings() -> Dict[str, Any]:
    value = getattr(settings, "JWTGUARD", None) or {}
    if not isinstance(value, dict):
        raise ImproperlyConfigured("settings.JWTGUARD must be a dict")
    return value


def _verifier_from_settings() -> Verifier:
    own = _settings()

    def get(name: str) -> Any:
        if name in _KEYS:
            return own.get(_KEYS[name])
        return getattr(settings, name, None)  # AUTH0_DOMAIN, API_IDENTIFIER

    try:
        return build_verifier(get)
    except RuntimeError as error:
        raise ImproperlyConfigured(
            "jwtguard.django: set JWTGUARD = {'ISSUER': ..., 'AUDIENCE': ...} or AUTH0_DOMAIN and "
            "API_IDENTIFIER in the settings"
        ) from error


class JWTGuardMiddleware:
    """Holds the process's verifier and gives each request ``request.jwt_claims = None`` (set
    by :func:`requires_auth` and :func:`requires_scope`). Sync and async capable."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]):
        self.get_response = get_response
        self.verifier = _verifier_from_settings()
        self.realm = str(_settings().get("REALM", "api"))
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        self._attach(request)
        if self._async:
            return self._acall(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await self.get_response(request)
        return response

    def _attach(self, request: HttpRequest) -> None:
        request.jwtguard = self  # type: ignore[attr-defined]
        request.jwt_claims = None  # type: ignore[attr-defined]
        request._jwtguard_claims = None  # type: ignore[attr-defined]

    def answer(self, error: AuthError, authorization: Optional[str] = None) -> HttpResponse:
        """The HTTP answer to a refusal of a request with this ``Authorization`` header."""
        status, body, headers = refusal(error, self.realm, self.verifier, authorization)
        response = json_response(body, status)
        for name, value in headers.items():
            response[name] = value
        return response


def _guard(request: HttpRequest) -> JWTGuardMiddleware:
    guard: Optional[JWTGuardMiddleware] = getattr(request, "jwtguard", None)
    if guard is None:
        raise ImproperlyConfigured("jwtguard.django: add 'jwtguard.django.JWTGuardMiddleware' to MIDDLEWARE")
    return guard


def _check(request: HttpRequest, scope: Optional[str]) -> Optional[HttpResponse]:
    """None when the request may go on (claims set on it), else the refusal to answer."""
    guard = _guard(request)
    lines = request.headers.get("Authorization")
    try:
        # Verified once per request, kept where only this module looks (`jwt_claims` is the
        # views' copy: something else setting it never stands in for a verification).
        claims: Optional[Dict[str, Any]] = getattr(request, "_jwtguard_claims", None)
        if claims is None:
            # Django joins repeated header lines with "," (as HTTP does): refused as one value,
            # DPoP lines too. The proof is checked against the URL the client addressed: behind
            # a proxy, set SECURE_PROXY_SSL_HEADER (X-Forwarded-Proto) and USE_X_FORWARDED_HOST.
            # The host Django validated is checked as every host checks it (the library's
            # host[:port]): one that is not gives no URL, which no proof matches.
            url = request.build_absolute_uri() if is_authority(request.get_host()) else ""
            claims = guard.verifier.verify_authorization(
                lines,
                dpop=request.headers.get("DPoP"),
                method=request.method or "GET",
                url=url,
            )
            request._jwtguard_claims = claims  # type: ignore[attr-defined]
        request.jwt_claims = claims  # type: ignore[attr-defined]
        if scope is not None and not has_scope(claims, scope):
            raise insufficient_scope(scope)
    except AuthError as error:
        return guard.answer(error, lines)
    return None


def _protect(view: F, scope: Optional[str]) -> F:
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = await sync_to_async(_check, thread_sensitive=False)(request, scope)
            if refused is not None:
                return refused
            return await view(request, *args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        refused = _check(request, scope)
        if refused is not None:
            return refused
        return view(request, *args, **kwargs)

    return cast(F, wrapper)


def requires_auth(view: F) -> F:
    """Require a valid access token; its claims land in ``request.jwt_claims``."""
    return _protect(view, None)


def requires_scope(scope: str) -> Callable[[F], F]:
    """Require a valid access token granting ``scope`` (in ``scope``, ``scp`` or
    ``permissions``); 403 ``insufficient_scope`` otherwise. Implies :func:`requires_auth`."""

    def decorate(view: F) -> F:
        return _protect(view, scope)

    return decorate
