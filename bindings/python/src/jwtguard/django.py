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

DPoP proofs are checked against the URL the request names: ``request.scheme``
(``SECURE_PROXY_SSL_HEADER``), ``request.get_host()`` (checked against ``ALLOWED_HOSTS``;
``X-Forwarded-Host`` under ``USE_X_FORWARDED_HOST``), and the raw request target as the client
sent it, percent-encoding intact: the WSGI server's ``RAW_URI`` or ``REQUEST_URI`` (gunicorn,
uWSGI, mod_wsgi), the ASGI ``raw_path`` (uvicorn); never the decoded path
(``build_absolute_uri()``, in which ``%2F..%2F`` becomes a dot segment; see
:func:`jwtguard._http.proof_path`, which also keeps a script prefix the target lacks).
Django's runserver and test client give no raw target: there the decoded path is
percent-encoded again. A host that is not ``host[:port]`` (:func:`jwtguard.is_authority`), a
target that does not decode to ``request.path``, or one with a ``.`` or ``..`` segment gives
no URL, and every proof is refused.

Two ``Authorization`` lines are a malformed request (400 ``invalid_header``), as in every
jwtguard host: under ASGI they are counted; a WSGI server hands them over joined with a
comma, so there a comma that is not between a scheme's ``name=value`` parameters is read as a
second line (:func:`jwtguard._http.joined_lines`).

The verifier is built once per process, when the
middleware is. Decorated views may be sync or async; an async view's verification runs in a
worker thread (it may wait for keys being fetched). ``request.jwt_claims`` holds the claims of
a verified request, ``None`` before.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Optional, TypeVar, Union, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from . import AuthError, Verifier, has_scope, is_authority
from ._http import (
    build_verifier,
    insufficient_scope,
    joined_lines,
    json_bytes,
    proof_path,
    refusal,
    several_lines,
    wsgi_raw_target,
)

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
            # Two Authorization lines are malformed, whatever they hold. Django joins repeated
            # header lines with "," (as WSGI servers do): under ASGI they are counted, under
            # WSGI a comma that is not between a scheme's parameters is read as a second
            # line. DPoP lines are refused as one joined value.
            if _authorization_lines(request) > 1:
                raise several_lines()
            claims = guard.verifier.verify_authorization(
                lines,
                dpop=request.headers.get("DPoP"),
                method=request.method or "GET",
                url=_proof_url(request),
            )
            request._jwtguard_claims = claims  # type: ignore[attr-defined]
        request.jwt_claims = claims  # type: ignore[attr-defined]
        if scope is not None and not has_scope(claims, scope):
            raise insufficient_scope(scope)
    except AuthError as error:
        return guard.answer(error, lines)
    return None


def _authorization_lines(request: HttpRequest) -> int:
    """How many Authorization lines the request has (under WSGI, 2 standing for several)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):  # ASGI: the lines as they came
        return sum(1 for name, _ in scope.get("headers", ()) if name.lower() == b"authorization")
    value = request.headers.get("Authorization")
    return 0 if value is None else 2 if joined_lines(value) else 1


def _proof_url(request: HttpRequest) -> str:
    """The URL a DPoP proof must name, or ``""`` (no URL: every proof refused)."""
    # The proof is checked against the URL the client addressed: behind a proxy, set
    # SECURE_PROXY_SSL_HEADER (X-Forwarded-Proto) and USE_X_FORWARDED_HOST. The host Django
    # validated (get_host raises DisallowedHost, answered 400) is checked as every host checks
    # it (the library's host[:port]): one that is not gives no URL, which no proof matches.
    host = request.get_host()
    if not is_authority(host):
        return ""
    scope = getattr(request, "scope", None)
    target: Union[str, bytes, None]
    if isinstance(scope, dict):
        raw = scope.get("raw_path")
        target = raw if isinstance(raw, bytes) and raw else None
    else:
        target = wsgi_raw_target(request.META)
    # request.path is what Django routes (its script prefix and path_info, decoded); the part
    # before path_info is the mount prefix a raw target may lack.
    full, info = request.path, request.path_info
    mount = full[: len(full) - len(info)] if info and full.endswith(info) else ""
    path = proof_path(target, [(full, mount)])
    return "" if path is None else f"{request.scheme}://{host}{path}"


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
