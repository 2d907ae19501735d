"""What every web integration shares: the verifier built from quickstart-style settings, and a
refusal as an HTTP answer (the quickstart's JSON body, RFC 6750 ``WWW-Authenticate``, and
``Retry-After`` while the issuer's keys cannot be had)."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from . import STATUS_INSUFFICIENT_SCOPE, STATUS_KEYS_UNAVAILABLE, AuthError, Verifier

SETTINGS_HELP = (
    "set AUTH0_DOMAIN and API_IDENTIFIER, or JWTGUARD_ISSUER and JWTGUARD_AUDIENCE "
    "(optionally JWTGUARD_JWKS_URI, JWTGUARD_ALGORITHMS, JWTGUARD_LEEWAY)"
)


def json_bytes(value: Any) -> bytes:
    """JSON as every host writes it (Flask's ``jsonify`` outside debug mode, the C server,
    nginx): sorted keys, no spaces, ASCII, a final newline; the same answer is the same bytes."""
    return (json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n").encode("ascii")


def quote(value: str) -> str:
    """A quoted-string's content (RFC 9110): backslash and double quote escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def challenge(error: AuthError, realm: str, scope: Optional[str] = None) -> str:
    """The ``WWW-Authenticate`` value for a refusal (RFC 6750 section 3)."""
    parts = [f'realm="{quote(realm)}"']
    if error.error:
        parts.append(f'error="{error.error}"')
        parts.append(f'error_description="{quote(error.description)}"')
    if scope:
        parts.append(f'scope="{quote(scope)}"')
    return "Bearer " + ", ".join(parts)


def refusal(
    error: AuthError,
    realm: str,
    verifier: Optional[Verifier] = None,
    authorization: Optional[str] = None,
) -> Tuple[int, Dict[str, str], Dict[str, str]]:
    """(HTTP status, JSON body, headers) for a refused request, the same in every host. With
    the ``verifier`` that refused it and the request's ``authorization`` header, the challenge
    is that verifier's (DPoP's beside Bearer's, RFC 9449 section 7.1); without, Bearer's."""
    headers: Dict[str, str] = {}
    if error.status_code in (400, 401, 403):
        scope = getattr(error, "scope", None)
        if verifier is not None:
            text = verifier.challenge(error.status, authorization, realm, scope)
            if text:
                headers["WWW-Authenticate"] = text
        else:
            headers["WWW-Authenticate"] = challenge(error, realm, scope)
    if error.status == STATUS_KEYS_UNAVAILABLE:
        headers["Retry-After"] = "5"
    return error.status_code, error.to_dict(), headers


def insufficient_scope(scope: str) -> AuthError:
    """The refusal of a verified token that lacks ``scope`` (403, ``insufficient_scope``)."""
    error = AuthError(STATUS_INSUFFICIENT_SCOPE)
    error.scope = scope  # type: ignore[attr-defined]
    return error


def build_verifier(get: Callable[[str], Any], extra: Optional[Mapping[str, Any]] = None, **forced: Any) -> Verifier:
    """A verifier from settings read by ``get(name)`` (``JWTGUARD_ISSUER``, ``AUTH0_DOMAIN``, ...;
    each may be missing), ``JWTGUARD_OPTIONS`` and ``extra`` as further options."""
    issuer = get("JWTGUARD_ISSUER")
    audience = get("JWTGUARD_AUDIENCE") or get("API_IDENTIFIER")
    if not issuer and get("AUTH0_DOMAIN"):
        issuer = f"https://{get('AUTH0_DOMAIN')}/"
    if not issuer or not audience:
        raise RuntimeError(f"jwtguard: {SETTINGS_HELP}")
    options: Dict[str, Any] = dict(get("JWTGUARD_OPTIONS") or {})
    options.update(extra or {})
    options.update(forced)
    algorithms = get("JWTGUARD_ALGORITHMS") or ("RS256",)
    if isinstance(algorithms, str):
        algorithms = algorithms.replace(",", " ").split()
    leeway = get("JWTGUARD_LEEWAY")
    dpop = get("JWTGUARD_DPOP")
    if dpop:
        options.setdefault("dpop", str(dpop))
    origins = get("JWTGUARD_DPOP_ORIGINS")
    if origins:
        if isinstance(origins, str):
            origins = origins.replace(",", " ").split()
        options.setdefault("dpop_origins", list(origins))
    return Verifier(
        issuer,
        audience,
        jwks_uri=get("JWTGUARD_JWKS_URI") or None,
        algorithms=algorithms,
        leeway=60 if leeway in (None, "") else int(leeway),
        **options,
    )
