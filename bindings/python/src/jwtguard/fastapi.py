"""FastAPI (and Starlette) integration: a security dependency with FastAPI's own idioms.

    from fastapi import Depends, FastAPI, Security
    from jwtguard.fastapi import JWTGuard

    auth = JWTGuard()          # settings from the environment, or JWTGuard(issuer=..., audience=...)
    app = FastAPI()
    auth.install(app)          # refusals answered with the quickstart's JSON body

    @app.get("/api/private")
    async def private(claims: dict = Depends(auth)): ...

    @app.get("/api/private-scoped")
    async def scoped(claims: dict = Security(auth, scopes=["read:messages"])): ...

Settings (environment, or the keyword arguments of the same names in lower case):
``AUTH0_DOMAIN`` and ``API_IDENTIFIER``, or ``JWTGUARD_ISSUER``, ``JWTGUARD_AUDIENCE``,
``JWTGUARD_JWKS_URI`` (optional: discovery), ``JWTGUARD_ALGORITHMS``, ``JWTGUARD_LEEWAY``,
``JWTGUARD_DPOP`` and ``JWTGUARD_DPOP_ORIGINS`` (space-separated; in code
``JWTGuard(dpop=..., dpop_origins=[...])``, as any :class:`jwtguard.Verifier` option).

DPoP proofs are checked against the URL the request names: the scope's scheme (uvicorn
``--proxy-headers`` applies ``X-Forwarded-Proto``), the ``Host`` header (without one, the
server's address, as Starlette's ``request.url``), and the raw request target, ASGI
``raw_path``, as the client sent it (percent-encoding intact; never Starlette's decoded path,
in which ``%3F`` would end the path and ``%2F..%2F`` become a dot segment; see
:func:`jwtguard._http.proof_path`, which also keeps a ``root_path`` the target lacks). A
``Host`` that is not ``host[:port]`` (:func:`jwtguard.is_authority`), or more than one, a
target that does not decode to the path Starlette routes, or one with a ``.`` or ``..``
segment gives no URL, and every proof is refused. Without ``raw_path`` (optional in ASGI)
the decoded path is percent-encoded again. ``dpop_origins`` pins the public origins the API
answers for. Two ``Authorization`` lines, whatever they hold (an empty one, another scheme),
are a malformed request: 400 ``invalid_header``, as in every jwtguard host.

A refusal raises :class:`Refused`, an ``HTTPException`` with the RFC 6750
``WWW-Authenticate`` header: after :meth:`JWTGuard.install` its body is the quickstart's
``{"code", "description"}`` (as from the Flask integration, the C server and nginx); without
it FastAPI's default handler answers ``{"detail": {...}}`` with the same status and headers.
``Security(auth, scopes=[...])`` requires every listed scope (``scope``, ``scp`` or
``permissions``). The OpenAPI document declares an HTTP bearer scheme, so ``/docs`` shows the
lock on each protected route. The claims are also in ``request.state.jwt_claims``.

The event loop is never blocked on the network: the verifier is non-blocking, so while keys
are being fetched (a cold start, a rotated key) the request awaits (``anyio.sleep``) and tries
again, up to ``key_wait`` seconds, then answers 503. Verification itself runs in the loop: a
token seen before is a token-cache hit (microseconds), a new one one signature check; a hop to
the threadpool would cost more than either (see the README for the measurement).
"""

# No `from __future__ import annotations` here: FastAPI reads the annotations of
# `JWTGuard.__call__` to know what to inject (`Request`, `SecurityScopes`), and many versions
# (0.100 to 0.120 at least) resolve postponed (string) annotations against the dependency's
# `__globals__`, which an instance has not: every parameter became a required query parameter (422 on every route).
# Annotations here are evaluated at definition time, so every FastAPI version sees classes.

import os
import threading
import time
from typing import Any, Dict, List, Optional

import anyio
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse as _StarletteJSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from . import STATUS_KEY_NOT_FOUND, STATUS_KEYS_UNAVAILABLE, AuthError, Verifier, has_scope, is_authority
from ._http import build_verifier, insufficient_scope, json_bytes, proof_path, refusal, several_lines

__all__ = ["JWTGuard", "Refused", "JSONResponse", "AuthError"]

# Declares the scheme in the OpenAPI document (the lock in /docs). Its own parsing is not used:
# jwtguard reads the Authorization header itself, with its stricter rules.
bearer_scheme = HTTPBearer(
    bearerFormat="JWT",
    scheme_name="jwtguard",
    description=(
        "An access token from the API's issuer: `Authorization: Bearer <token>`, or for a "
        "DPoP-bound token `Authorization: DPoP <token>` with its `DPoP` proof header."
    ),
    auto_error=False,
)

_RETRY_STEP = 0.02
# JWTGuard(...) keyword arguments: the settings' names.
_SETTINGS = {
    "issuer": "JWTGUARD_ISSUER",
    "audience": "JWTGUARD_AUDIENCE",
    "jwks_uri": "JWTGUARD_JWKS_URI",
    "algorithms": "JWTGUARD_ALGORITHMS",
    "leeway": "JWTGUARD_LEEWAY",
    "auth0_domain": "AUTH0_DOMAIN",
    "api_identifier": "API_IDENTIFIER",
}


class JSONResponse(_StarletteJSONResponse):
    """JSON written as every jwtguard host writes it (sorted keys, compact, a final newline),
    so one answer is the same bytes from FastAPI, Flask, the C server and nginx: refusals use
    it; ``FastAPI(default_response_class=JSONResponse)`` makes every answer use it."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


class Refused(HTTPException):
    """A refused request: an ``HTTPException`` carrying the :class:`AuthError` (``error``)."""

    def __init__(
        self,
        error: AuthError,
        realm: str,
        verifier: Optional[Verifier] = None,
        authorization: Optional[str] = None,
    ):
        status, body, headers = refusal(error, realm, verifier, authorization)
        super().__init__(status_code=status, detail=body, headers=headers)
        self.error = error
        self.body = body


async def _refused_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)


def _proof_url(request: Request) -> str:
    """The URL a DPoP proof must name, or ``""`` (no URL: every proof refused)."""
    # Starlette pastes the Host header into its URL as it came: "api.example/x" would make a
    # request for /api/private the URL http://api.example/x/api/private. A Host that is not
    # host[:port] (or several) gives no URL, which no proof matches. Without Host, the
    # server's own address, as Starlette takes it.
    hosts: List[str] = request.headers.getlist("host")
    authority = hosts[0] if len(hosts) == 1 else request.url.netloc if not hosts else ""
    if not is_authority(authority):
        return ""
    scope = request.scope
    path, root = str(scope.get("path", "")), str(scope.get("root_path", "") or "")
    # Which path Starlette routes, and so which the raw target must decode to: uvicorn today
    # puts root_path in `path` and `raw_path` (Starlette 1.x routes `path` less root_path);
    # older servers put it in neither (Starlette 0.27 routes `path`, its URL root_path + path).
    routed = [(path, root), (root + path, root)] if path.startswith(root) else [(root + path, root)]
    raw = scope.get("raw_path")
    target = proof_path(raw if isinstance(raw, bytes) and raw else None, routed)
    if target is None:
        return ""
    return f"{scope.get('scheme', 'http')}://{authority}{target}"


class JWTGuard:
    """A FastAPI dependency that verifies the request's access token and returns its claims.

    Args:
        verifier: a :class:`jwtguard.Verifier` to use; build it with ``non_blocking=True``,
            or a cold start or a new key blocks the event loop for the fetch. Default: one
            built from the settings on first use (non-blocking).
        realm: the ``realm`` of ``WWW-Authenticate`` (default ``api``).
        key_wait: seconds a request may wait for keys being fetched (default 5, at most 60).
        **settings: ``issuer``, ``audience``, ``jwks_uri``, ``algorithms``, ``leeway``,
            ``auth0_domain``, ``api_identifier`` instead of the environment, and any
            :class:`jwtguard.Verifier` option.
    """

    def __init__(
        self,
        verifier: Optional[Verifier] = None,
        *,
        realm: str = "api",
        key_wait: float = 5.0,
        **settings: Any,
    ):
        self.realm = realm
        self.key_wait = float(key_wait)
        if not 0 <= self.key_wait <= 60:  # NaN and infinity fail this too
            raise ValueError(f"jwtguard: key_wait must be 0 to 60 seconds (got {key_wait!r})")
        self._verifier = verifier
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def verifier(self) -> Verifier:
        """The verifier (built from the settings on first use)."""
        verifier = self._verifier
        if verifier is None:
            with self._lock:
                if self._verifier is None:
                    self._verifier = self._build()
                verifier = self._verifier
        return verifier

    def _build(self) -> Verifier:
        given = {key: value for key, value in self._settings.items() if key in _SETTINGS}
        options = {key: value for key, value in self._settings.items() if key not in _SETTINGS}
        options.setdefault("non_blocking", True)
        if given:
            # Settings given in code are the whole configuration: the environment (perhaps
            # another issuer's JWKS URL) is not mixed in.
            named = {_SETTINGS[key]: value for key, value in given.items()}
            return build_verifier(named.get, options)
        return build_verifier(lambda name: None if name == "JWTGUARD_OPTIONS" else os.environ.get(name), options)

    def install(self, app: FastAPI) -> None:
        """Answer refusals with the quickstart's JSON body (``{"code", "description"}``)."""
        app.add_exception_handler(Refused, _refused_handler)

    async def __call__(
        self,
        request: Request,
        security_scopes: SecurityScopes,
        _credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer_scheme),  # noqa: B008
    ) -> Dict[str, Any]:
        claims = await self.authenticate(request)
        for scope in security_scopes.scopes:
            if not has_scope(claims, scope):
                raise Refused(
                    insufficient_scope(security_scopes.scope_str),
                    self.realm,
                    self.verifier,
                    request.headers.get("authorization"),
                )
        return claims

    async def authenticate(self, request: Request) -> Dict[str, Any]:
        """The claims of the request's token (kept on ``request.state`` for the request), or
        :class:`Refused`."""
        # Kept per guard: claims one guard verified (its issuer, audience, keys) never answer
        # for another guard of the same request; `request.state.jwt_claims` is only an output.
        mine: Optional[Dict[int, Dict[str, Any]]] = getattr(request.state, "_jwtguard_claims", None)
        if mine is None:
            mine = {}
            request.state._jwtguard_claims = mine
        kept = mine.get(id(self))
        if kept is not None:
            return kept
        lines: List[str] = request.headers.getlist("authorization")
        # Several Authorization lines are refused as malformed, whatever they hold, as in every
        # host (the challenge is made for them joined by ", ", as HTTP joins them).
        header = ", ".join(lines) if lines else None
        # DPoP (RFC 9449): the proof is checked against the URL the client addressed. Behind a
        # proxy, run uvicorn with --proxy-headers (X-Forwarded-Proto) and have the proxy pass
        # the client's Host.
        proofs: List[str] = request.headers.getlist("dpop")
        url = _proof_url(request)
        verifier = self.verifier

        def refused(error: AuthError) -> Refused:
            return Refused(error, self.realm, verifier, header)

        if len(lines) > 1:
            raise refused(several_lines())

        deadline = time.monotonic() + self.key_wait
        # A refusal for want of keys while no fetch runs is tried once more at once: a fetch
        # that ended between the verification and the look at `fetching()` brought keys the
        # verification did not see. (What jwt_verifier_fetch_epoch tells C hosts, at no cost
        # on the hot path: reading it before every verification costs 1.5 µs from Python.)
        checked_again = False
        while True:
            try:
                claims = verifier.verify_authorization(header, dpop=proofs or None, method=request.method, url=url)
                break
            except AuthError as error:
                if error.status not in (STATUS_KEY_NOT_FOUND, STATUS_KEYS_UNAVAILABLE):
                    raise refused(error) from None
                if not verifier.fetching():
                    if checked_again:
                        raise refused(error) from None
                    checked_again = True
                    continue
                if time.monotonic() >= deadline:
                    raise refused(error) from None
                checked_again = False
            await anyio.sleep(_RETRY_STEP)
        mine[id(self)] = claims
        request.state.jwt_claims = claims
        return claims

    def close(self) -> None:
        """Release the verifier (a later request builds a new one from the settings)."""
        with self._lock:
            verifier, self._verifier = self._verifier, None
        if verifier is not None:
            verifier.close()

