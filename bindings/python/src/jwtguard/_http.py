"""What every web integration shares: the verifier built from quickstart-style settings, a
refusal as an HTTP answer (the quickstart's JSON body, RFC 6750 ``WWW-Authenticate``, and
``Retry-After`` while the issuer's keys cannot be had), the path of the URL a DPoP proof must
name (:func:`proof_path`), and several ``Authorization`` lines told apart from one
(:func:`joined_lines`)."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote as _url_quote
from urllib.parse import unquote

from . import (
    STATUS_AUTHORIZATION_HEADER_MALFORMED,
    STATUS_INSUFFICIENT_SCOPE,
    STATUS_KEYS_UNAVAILABLE,
    AuthError,
    Verifier,
)

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


# An absolute-form request target's scheme and authority (`GET http://host/path HTTP/1.1`).
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*")
# What a decoded path keeps as it is when encoded again: RFC 3986 path characters (quote()
# keeps the unreserved ones itself). "%", "?", "#" and the rest are percent-encoded.
_PATH_SAFE = "/!$&'()*+,;=:@"


def _escape_target(target: str) -> str:
    """The target with every character outside visible ASCII, and ``#``, percent-encoded: one
    byte per character below 256 (a WSGI string, or bytes read as Latin-1), UTF-8 above."""
    out = []
    for char in target:
        if "!" <= char <= "~" and char != "#":
            out.append(char)
        else:
            data = bytes([ord(char)]) if ord(char) < 256 else char.encode("utf-8", "surrogatepass")
            out.extend(f"%{byte:02X}" for byte in data)
    return "".join(out)


def _has_dot_segment(path: str) -> bool:
    """Whether the path holds a ``.`` or ``..`` segment as the core reads it (``%2E`` is a dot:
    it decodes unreserved escapes before it removes dot segments; ``%2F`` is no slash)."""
    return any(segment.replace("%2e", ".").replace("%2E", ".") in (".", "..") for segment in path.split("/"))


def proof_path(raw: Union[str, bytes, None], routed: Sequence[Tuple[str, str]]) -> Optional[str]:
    """The path of the URL a DPoP proof must name (``htu``), from the request target as the
    client sent it; ``None`` when there is none to give (the caller then passes no URL, and
    every proof is refused).

    ``raw`` is the raw request target (WSGI ``RAW_URI`` / ``REQUEST_URI``, ASGI ``raw_path``)
    or ``None`` when the server gives none. ``routed`` lists what the framework decoded it to,
    as ``(full path, mount prefix)`` readings: the path (``SCRIPT_NAME`` or ``root_path``
    included) percent-decoded, and the prefix a mount point puts before it, which the raw
    target may lack (a proxy stripped it; uvicorn ``--root-path``, ``ProxyFix`` x_prefix).

    Why not the framework's URL: it pastes the *decoded* path, so ``/files/public%3Fsecret``
    read as ``/files/public`` with a query (the core drops it), ``/a%253Fb`` as ``/a%3Fb``, and
    ``/admin/x%2F..%2Fusers`` as ``/admin/x/../users``, which the core's normaliser
    (:func:`jwtguard.dpop` ``normalize_url``: unreserved escapes decoded, ``%2F`` and ``%3F``
    kept, dot segments removed) makes ``/admin/users``: a proof for one resource was taken at
    a request the framework routes to another. So:

    * The raw target, its query cut, an absolute-form target's ``scheme://authority`` taken
      off, bytes outside visible ASCII and ``#`` percent-encoded, is the path, when its
      decoding is the path the framework routes (one of ``routed``), or that path less its
      mount prefix (the prefix, encoded, then goes first). A raw target that decodes to
      anything else (a server that gives a decoded one, a middleware that rewrote the path)
      gives no path: the proof URL must be both what the client sent and what is served.
    * Without a raw target, the first ``routed`` path is percent-encoded again (``%``, ``?``,
      ``#`` and what is not a path character): ``%2F`` can then not be told from ``/``, which is
      harmless as the framework routes both alike.
    * Either way, a path with a ``.`` or ``..`` segment (``%2E`` counts as a dot) gives no path:
      the core would remove it while the framework routes it as it is (Flask, Starlette and
      Django do not resolve dot segments), so ``/api/x/../private`` would take a proof for
      ``/api/private``. Clients send paths with dot segments resolved (RFC 3986 section 5.2).
    """
    if raw is None:
        if not routed or not routed[0][0].startswith("/"):
            return None
        path = _url_quote(routed[0][0], safe=_PATH_SAFE, errors="replace")
    else:
        target = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        target = target.split("?", 1)[0]
        absolute = _ABSOLUTE_FORM.match(target)
        if absolute:
            target = target[absolute.end() :] or "/"
        if not target.startswith("/"):
            return None  # asterisk-form, or not a target at all
        target = _escape_target(target)
        sent = unquote(target, errors="replace")
        for full, mount in routed:
            if full == sent:
                path = target
                break
            lacking = full[: len(full) - len(sent)]
            if lacking and full.endswith(sent) and mount.startswith(lacking):
                path = _url_quote(lacking, safe=_PATH_SAFE, errors="replace") + target
                break
        else:
            return None
    return None if _has_dot_segment(path) else path


def wsgi_raw_target(environ: Mapping[str, Any]) -> Optional[str]:
    """The raw request target a WSGI server put in the environ: ``RAW_URI`` (gunicorn,
    werkzeug's server and test client) or ``REQUEST_URI`` (uWSGI, mod_wsgi, werkzeug);
    ``None`` where neither is (wsgiref, so Django's runserver, and Django's test client)."""
    for key in ("RAW_URI", "REQUEST_URI"):
        value = environ.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def wsgi_text(value: str) -> str:
    """A WSGI environ string (bytes as Latin-1) as text: UTF-8, undecodable bytes replaced."""
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


def _list_elements(text: str) -> List[str]:
    """The comma-separated elements of a header value, commas inside quoted strings kept."""
    elements: List[str] = []
    current: List[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            elements.append("".join(current))
            current = []
            continue
        current.append(char)
    elements.append("".join(current))
    return elements


_AUTH_PARAM_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def joined_lines(value: Optional[str]) -> bool:
    """Whether an ``Authorization`` value a WSGI server handed over holds several field lines.

    WSGI servers join repeated lines with a comma (werkzeug's server, gunicorn, and wsgiref,
    so Django's runserver; werkzeug's test client with ``", "``), and the environ cannot say
    how many there were. A token (Bearer, DPoP) and a token68 credential (``Basic``) hold no
    comma, so one there is a joined line; the only credentials with commas are a list of
    ``name=value`` parameters (``Digest a=b, c=d``; commas in quoted strings are theirs), so
    a comma-separated element that is not one — empty (an empty line), ``Bearer t`` (another
    line's scheme and credentials), a bare ``Basic`` — is a joined line too. A second line
    that is itself only ``name=value`` cannot be told from a parameter, and is read as one."""
    if value is None or "," not in value:
        return False
    scheme, *rest = re.split(r"[ \t]+", value.strip(" \t"), maxsplit=1)
    credentials = rest[0] if rest else ""
    if "," in scheme or scheme.lower() in ("bearer", "dpop"):
        return True
    for element in _list_elements(credentials):
        name, equals, _ = element.strip(" \t").partition("=")
        if not equals or not _AUTH_PARAM_NAME.fullmatch(name.rstrip(" \t")):
            return True
    return False


def several_lines() -> AuthError:
    """The refusal of a request with several ``Authorization`` lines: malformed (400
    ``invalid_header``), as in every jwtguard host, whatever the lines hold."""
    return AuthError(STATUS_AUTHORIZATION_HEADER_MALFORMED)
