"""jwtguard: JWT access-token verification for Python.

The verifier is the jwtguard Rust library, called through ctypes: strict parsing, an algorithm
allow-list, keys only from the issuer's JWKS, and a process-wide JWKS cache that survives key
rotation and issuer outages.

    verifier = jwtguard.Verifier("https://TENANT/", "https://api.example")
    claims = verifier.verify_authorization(request.headers.get("Authorization"))
    jwtguard.has_scope(claims, "read:messages")
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from . import _native
from ._native import lib

__all__ = [
    "AuthError",
    "Verifier",
    "has_scope",
    "is_authority",
    "version",
    "library_version",
    "live_handles",
    "STATUS_OK",
    "STATUS_INSUFFICIENT_SCOPE",
    "STATUS_TOKEN_MISSING",
    "STATUS_KEYS_UNAVAILABLE",
    "DPOP_MODES",
]


# Status numbers used by the Python layer itself (the full list is in jwtguard.h).
STATUS_OK = 0
STATUS_TOKEN_MISSING = 100
STATUS_AUTHORIZATION_HEADER_MALFORMED = 101
STATUS_AUTHORIZATION_SCHEME_UNSUPPORTED = 102
STATUS_KEY_NOT_FOUND = 200
STATUS_INSUFFICIENT_SCOPE = 400
STATUS_KEYS_UNAVAILABLE = 500
STATUS_NULL_ARGUMENT = 900
STATUS_INVALID_ARGUMENT = 901
STATUS_CONFIG_INVALID = 902

# What a verifier does with DPoP (RFC 9449): jwt_dpop_mode's numbers.
DPOP_MODES = {"off": 0, "allowed": 1, "required": 2}

_COUNTERS = (
    "verify_ok",
    "verify_failed",
    "fetch_ok",
    "fetch_failed",
    "fetch_not_modified",
    "unknown_kid_refetch",
    "cache_hit",
    "stale_hit",
    "token_cache_hit",
    "token_cache_miss",
    "token_cache_eviction",
)

_log = logging.getLogger("jwtguard")


def library_version() -> str:
    """The version of the loaded jwtguard library (the Rust crate's, as in ``jwtguard.h``)."""
    return str(lib.jwt_version().decode())


version = library_version  # the name of earlier releases

# One version for the crate, the C header, the wheel and this package: the package is built
# with the crate's version (setup.py) and carries that very library, so its version is the
# library's.
__version__: str = library_version()


def live_handles() -> Dict[str, int]:
    """Library handles made and not yet freed in this process, by kind (``configs``,
    ``verifiers``, ``claims``): for leak checks. A closed or collected :class:`Verifier`
    leaves none; claims are freed inside every call."""
    return {name: int(lib.jwt_live_handles(kind)) for kind, name in enumerate(("configs", "verifiers", "claims"))}


class AuthError(Exception):
    """A request was refused.

    Attributes:
        code: the quickstart's JSON code (``token_expired``, ``invalid_header``, ...).
        description: a human description.
        status_code: the HTTP status to answer with (400, 401, 403, 503).
        error: the RFC 6750 ``error`` attribute (``invalid_token``, ...), or ``""``.
        reason: the stable name shared with the CLI, C and nginx (``token_expired``, ...).
        status: the jwtguard status number.
    """

    def __init__(self, status: int, description: Optional[str] = None):
        self.status = int(status)
        self.reason: str = lib.jwt_status_reason(self.status).decode()
        self.code: str = lib.jwt_status_code(self.status).decode()
        self.error: str = lib.jwt_status_rfc6750_error(self.status).decode()
        self.status_code: int = int(lib.jwt_status_http_status(self.status))
        self.description: str = description or lib.jwt_status_description(self.status).decode()
        super().__init__(f"{self.description} ({self.reason})")

    def to_dict(self) -> Dict[str, str]:
        """The quickstart's error body: ``{"code", "description"}``."""
        return {"code": self.code, "description": self.description}

    def __repr__(self) -> str:
        return f"AuthError(reason={self.reason!r}, status_code={self.status_code})"


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _check(status: int, what: str) -> None:
    if status != STATUS_OK:
        error = AuthError(status)
        raise ValueError(f"jwtguard: {what}: {error.description} ({error.reason})")


def _as_list(value: Union[str, Iterable[str]]) -> Sequence[str]:
    return [value] if isinstance(value, str) else list(value)


def has_scope(claims: Mapping[str, Any], scope: str) -> bool:
    """Whether verified claims grant ``scope``: an exact, case-sensitive match of one
    space-separated entry of ``scope``, of ``scp`` (string or list) or of one entry of Auth0's
    ``permissions`` list. The same rule as the C ``jwt_has_scope``."""
    if not isinstance(scope, str) or not scope:
        return False
    try:
        document = _text(json.dumps(dict(claims)))
    except (TypeError, ValueError):
        return False
    encoded = _text(scope)
    return bool(lib.jwt_has_scope_json(document, len(document), encoded, len(encoded)))


def is_authority(host: Union[str, bytes, None]) -> bool:
    """Whether ``host`` can be a request's authority, ``host[:port]`` as in a ``Host`` or
    ``X-Forwarded-Host`` header: RFC 3986 host characters (an IPv6 literal in brackets) and an
    optional port up to 65535; no ``/``, ``?``, ``#``, ``@``, backslash or other ``:``. The
    library's own check (``jwt_is_authority``), the one the C server, ``jwtguard serve`` and
    the Flask, FastAPI and Django integrations apply before they build the URL a DPoP proof is
    checked against from such a header: pasted into a URL, ``Host: api.example/x`` names
    another URL (``http://api.example/x/api/private``). ``None``, and text that is not
    UTF-8 (lone surrogates), are not authorities."""
    if host is None:
        return False
    if isinstance(host, str):
        try:
            data = host.encode("utf-8")
        except UnicodeEncodeError:
            return False
    elif isinstance(host, (bytes, bytearray)):
        data = bytes(host)
    else:
        raise TypeError(f"jwtguard: is_authority takes str or bytes, not {type(host).__name__}")
    return bool(lib.jwt_is_authority(data, len(data)))


# Seconds options -> C setter; other options are handled one by one in Verifier.__init__.
_SECONDS_OPTIONS = {
    "ttl": "jwt_config_set_cache_ttl",
    "refetch_cooldown": "jwt_config_set_refetch_cooldown",
    "refresh_ahead": "jwt_config_set_refresh_ahead",
    "max_stale": "jwt_config_set_max_stale",
}
_CACHE_OPTIONS = tuple(_SECONDS_OPTIONS) + (
    "ttl_bounds",
    "backoff",
    "timeouts",
    "max_jwks_size",
    "non_blocking",
    "snapshot",
    "ca_file",
    "allow_insecure_http",
    "max_token_size",
    "token_cache",
)


def _seconds(value: Any, what: str) -> int:
    """A whole, non-negative number of seconds (or milliseconds) for the C setters, which take
    unsigned values: a negative number would wrap around to a huge one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"jwtguard: {what} must be a number, not {type(value).__name__}")
    if value != value or value < 0:
        raise ValueError(f"jwtguard: {what} must not be negative (got {value!r})")
    return int(value)


# Most tokens whose parsed claims a verifier keeps (each some kilobytes), and the longest
# token kept (the library's token cache keeps none longer either).
_PARSED_MAX = 4096
_PARSED_MAX_TOKEN = 16 * 1024

_verify = lib.jwt_verify
_verify_status = lib.jwt_verify_status
_verify_authorization = lib.jwt_verify_authorization
_verify_authorization_status = lib.jwt_verify_authorization_status
_verify_request = lib.jwt_verify_request
_verify_request_status = lib.jwt_verify_request_status


def _copy(value: Any) -> Any:
    """A JSON value's own copy (lists and objects copied all the way down)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _own(kept: Tuple[Dict[str, Any], Tuple[str, ...]]) -> Dict[str, Any]:
    """The caller's own copy of kept claims: strings and numbers are immutable, so only the
    members holding lists or objects (``nested``) need copying."""
    claims, nested = kept
    mine = claims.copy()
    for key in nested:
        mine[key] = _copy(mine[key])
    return mine


# What an entry of ``Verifier(issuers=[...])`` may hold besides cache options.
_ISSUER_KEYS = ("issuer", "audience", "jwks_uri", "algorithms", "leeway", "required_claims", "strict", "jwks", "jwks_file")


def _issuer_table(entry: Mapping[str, Any], shared: Mapping[str, Any]) -> Dict[str, Any]:
    """One issuer of ``Verifier(issuers=[...])``: its own settings, the shared cache options
    under its own (``token_cache`` is the verifier's, never an issuer's)."""
    if not isinstance(entry, Mapping):
        raise TypeError(f"each issuers entry is a mapping, not {type(entry).__name__}")
    per_issuer = set(_CACHE_OPTIONS) - {"token_cache"}
    unknown = set(entry) - set(_ISSUER_KEYS) - per_issuer
    if unknown:
        raise TypeError(f"unknown issuers entry key(s): {', '.join(sorted(unknown))}")
    for required in ("issuer", "audience"):
        if entry.get(required) is None:
            raise TypeError(f"each issuers entry needs {required!r}")
    table = {k: v for k, v in shared.items() if k in per_issuer}
    table.update(entry)
    return table


class Verifier:
    """A configured verifier, safe to share between threads.

    Args:
        issuer: accepted ``iss`` (e.g. ``"https://TENANT/"``), or a list of them.
        audience: accepted ``aud``, or a list of them.
        jwks_uri: the issuer's JWKS URL, shared by every name in ``issuer`` (one issuer's
            canonical and custom domains); ``None`` discovers the keys of each name from that
            name itself, and a token is verified only with the keys of its own ``iss`` (one
            tenant's keys never verify another's tokens).
        algorithms: allowed algorithms (``RS256`` by default).
        leeway: seconds of clock skew for ``exp``, ``nbf`` and ``iat``.
        required_claims: claims that must be present (``sub``, ``client_id``, ...).
        strict: RFC 9068 mode (``typ`` ``at+jwt`` and the RFC's claims required).
        jwks: a fixed JWKS (dict or JSON text) instead of a URL.
        jwks_file: a fixed JWKS file instead of a URL.
        dpop: what DPoP (RFC 9449) may do: ``"allowed"`` (the default: bearer tokens without
            ``cnf`` work; a token bound to a key is accepted only as ``Authorization: DPoP``
            with a valid proof), ``"required"`` (only DPoP-bound tokens) or ``"off"`` (the
            ``DPoP`` scheme is refused, and so is every bound token).
        dpop_algorithms: algorithms a DPoP proof may use (default every asymmetric one).
        dpop_window: seconds a proof is good for after its ``iat`` (default 60; the leeway
            applies on top).
        dpop_replay_cache: proofs remembered against replay (default 250000); when it is
            full of live proofs, new ones are refused (``dpop_replay_cache_full``, 503); one
            client (its ``iss`` and ``sub``, else its ``client_id``, else its key) may hold
            at most an eighth of it, however many keys it proves with. Each process keeps its
            own.
        dpop_origins: the public origins the API answers for (``"https://api.example"``,
            ``"http://127.0.0.1:8080"``: scheme, host and port, no path), a string or a list.
            Once any is given, a DPoP proof is accepted only for a request URL on one of them,
            whatever ``Host`` or forwarded header the URL was built from
            (``dpop_proof_url_mismatch`` otherwise). A value that is not an origin raises
            :class:`ValueError`. Default: none (the URL the request names is trusted).
        issuers: several issuers in one verifier, instead of ``issuer``, ``audience`` and the
            keys arguments: a list of mappings, each with ``issuer`` and ``audience`` and
            optionally ``jwks_uri`` / ``jwks`` / ``jwks_file``, ``algorithms``, ``leeway``,
            ``required_claims``, ``strict`` and any cache option but ``token_cache``
            (overriding the shared ones). A token's unverified ``iss`` picks the issuer; it is
            then verified against that issuer's keys and policy only, and an ``iss`` no
            issuer lists is refused (``issuer_invalid``) without fetching anything.
        **cache_options: ``ttl``, ``refresh_ahead``, ``refetch_cooldown``, ``max_stale``
            (seconds), ``ttl_bounds`` ((min, max) seconds), ``backoff`` ((initial, max)
            seconds), ``timeouts`` ((connect, total) seconds), ``max_jwks_size`` (bytes),
            ``max_token_size`` (bytes), ``non_blocking``, ``snapshot`` (path), ``ca_file``
            (path), ``allow_insecure_http``, ``token_cache`` (verified tokens remembered,
            default 10000, 0 for none).

    Building never touches the network; keys are fetched on first use or by :meth:`refresh`.
    Negative or out-of-range durations raise :class:`ValueError`. :meth:`close` waits for
    calls running in other threads; calls after it raise :class:`ValueError`.
    """

    def __init__(
        self,
        issuer: Union[None, str, Iterable[str]] = None,
        audience: Union[None, str, Iterable[str]] = None,
        jwks_uri: Optional[str] = None,
        algorithms: Iterable[str] = ("RS256",),
        leeway: int = 60,
        required_claims: Iterable[str] = (),
        strict: bool = False,
        *,
        jwks: Union[None, str, Mapping[str, Any]] = None,
        jwks_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        issuers: Optional[Iterable[Mapping[str, Any]]] = None,
        dpop: str = "allowed",
        dpop_algorithms: Optional[Iterable[str]] = None,
        dpop_window: int = 60,
        dpop_replay_cache: int = 250_000,
        dpop_origins: Union[None, str, Iterable[str]] = None,
        **cache_options: Any,
    ):
        self._handle: Optional[int] = None
        # Calls in flight, so that close() frees the handle only once none uses it. Calls
        # take the plain lock (cheap); close() waits on the condition built on it.
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._calls = 0
        # Claims parsed once per token (see _verified); off with the token cache.
        self._parsed: Optional[Dict[bytes, Tuple[Dict[str, Any], Tuple[str, ...]]]] = None
        self._parsed_max = 0
        unknown = set(cache_options) - set(_CACHE_OPTIONS)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        if issuers is None:
            if issuer is None or audience is None:
                raise TypeError("Verifier needs issuer and audience (or issuers=[...])")
            tables: List[Dict[str, Any]] = [
                dict(
                    issuer=issuer,
                    audience=audience,
                    jwks_uri=jwks_uri,
                    algorithms=algorithms,
                    leeway=leeway,
                    required_claims=required_claims,
                    strict=strict,
                    jwks=jwks,
                    jwks_file=jwks_file,
                )
            ]
        else:
            single = dict(issuer=issuer, audience=audience, jwks_uri=jwks_uri, jwks=jwks, jwks_file=jwks_file)
            given = [name for name, value in single.items() if value is not None]
            if given:
                raise TypeError(f"give {', '.join(given)} inside each issuers entry, not beside issuers")
            tables = [_issuer_table(entry, cache_options) for entry in issuers]
            if not tables:
                raise ValueError("jwtguard: issuers is empty")
        config = lib.jwt_config_new()
        if not config:
            raise MemoryError("jwt_config_new failed")
        try:
            self._configure(config, options=cache_options, **tables[0])
            if dpop not in DPOP_MODES:
                raise ValueError(f"jwtguard: dpop must be off, allowed or required, not {dpop!r}")
            self.dpop = dpop
            _check(lib.jwt_config_set_dpop(config, DPOP_MODES[dpop]), "dpop")
            for value in _as_list(dpop_algorithms or ()):
                data = _text(str(value))
                _check(lib.jwt_config_add_dpop_algorithm(config, data, len(data)), f"dpop algorithm {value!r}")
            _check(lib.jwt_config_set_dpop_window(config, _seconds(dpop_window, "dpop_window")), "dpop_window")
            _check(
                lib.jwt_config_set_dpop_replay_cache(config, _seconds(dpop_replay_cache, "dpop_replay_cache")),
                "dpop_replay_cache",
            )
            for value in _as_list(dpop_origins or ()):
                if not isinstance(value, str):
                    raise TypeError(f"jwtguard: each dpop_origins entry is a string, not {type(value).__name__}")
                data = _text(value)
                _check(lib.jwt_config_add_dpop_origin(config, data, len(data)), f"dpop origin {value!r}")
            for table in tables[1:]:
                more = lib.jwt_config_new()
                if not more:
                    raise MemoryError("jwt_config_new failed")
                try:
                    self._configure(more, **table)
                    _check(lib.jwt_config_add_issuer_config(config, more), "issuers")
                finally:
                    lib.jwt_config_free(more)
            handle = _native.verifier_p()
            status = lib.jwt_verifier_new(config, ctypes.byref(handle))
            _check(status, "cannot build the verifier")
            self._handle = handle.value
        finally:
            lib.jwt_config_free(config)
        token_cache = _seconds(cache_options.get("token_cache", 10_000), "token_cache")
        if token_cache > 0:
            self._parsed, self._parsed_max = {}, min(token_cache, _PARSED_MAX)

    @staticmethod
    def _configure(
        config: int,
        issuer: Union[str, Iterable[str]],
        audience: Union[str, Iterable[str]],
        jwks_uri: Optional[str] = None,
        algorithms: Union[str, Iterable[str]] = ("RS256",),
        leeway: int = 60,
        required_claims: Union[str, Iterable[str]] = (),
        strict: bool = False,
        jwks: Union[None, str, Mapping[str, Any]] = None,
        jwks_file: Optional[Union[str, "os.PathLike[str]"]] = None,
        options: Mapping[str, Any] = {},
        **own_options: Any,
    ) -> None:
        options = {**dict(options), **own_options}

        def text(setter: str, value: str, what: str) -> None:
            data = _text(str(value))
            _check(getattr(lib, setter)(config, data, len(data)), f"{what} {value!r}")

        for value in _as_list(issuer):
            text("jwt_config_add_issuer", value, "issuer")
        for value in _as_list(audience):
            text("jwt_config_add_audience", value, "audience")
        for value in _as_list(algorithms):
            text("jwt_config_add_algorithm", value, "algorithm")
        for value in _as_list(required_claims):
            text("jwt_config_add_required_claim", value, "required claim")
        _check(lib.jwt_config_set_leeway(config, _seconds(leeway, "leeway")), "leeway")
        _check(lib.jwt_config_set_strict(config, bool(strict)), "strict")
        sources = [s for s in (jwks_uri, jwks, jwks_file) if s is not None]
        if len(sources) > 1:
            raise ValueError("give at most one of jwks_uri, jwks and jwks_file")
        if jwks_uri is not None:
            text("jwt_config_set_jwks_uri", jwks_uri, "jwks_uri")
        elif jwks is not None:
            text("jwt_config_set_jwks_json", jwks if isinstance(jwks, str) else json.dumps(jwks), "jwks")
        elif jwks_file is not None:
            text("jwt_config_set_jwks_file", os.fspath(jwks_file), "jwks_file")
        for name, value in options.items():
            if name in _SECONDS_OPTIONS:
                _check(getattr(lib, _SECONDS_OPTIONS[name])(config, _seconds(value, name)), name)
            elif name == "ttl_bounds":
                low, high = (_seconds(v, name) for v in value)
                _check(lib.jwt_config_set_ttl_bounds(config, low, high), name)
            elif name == "backoff":
                low, high = (_seconds(v * 1000, name) for v in value)
                _check(lib.jwt_config_set_backoff(config, low, high), name)
            elif name == "timeouts":
                low, high = (_seconds(v * 1000, name) for v in value)
                _check(lib.jwt_config_set_fetch_timeouts(config, low, high), name)
            elif name == "max_jwks_size":
                _check(lib.jwt_config_set_max_jwks_size(config, _seconds(value, name)), name)
            elif name == "token_cache":
                _check(lib.jwt_config_set_token_cache(config, _seconds(value, name)), name)
            elif name == "max_token_size":
                _check(lib.jwt_config_set_max_token_size(config, _seconds(value, name)), name)
            elif name == "non_blocking":
                _check(lib.jwt_config_set_non_blocking(config, bool(value)), name)
            elif name == "allow_insecure_http":
                _check(lib.jwt_config_set_allow_insecure_http(config, bool(value)), name)
            elif name == "snapshot":
                text("jwt_config_set_snapshot", os.fspath(value), name)
            elif name == "ca_file":
                text("jwt_config_set_ca_file", os.fspath(value), name)

    def _enter(self) -> int:
        """The handle, counted as in use until :meth:`_leave`."""
        with self._lock:
            handle = self._handle
            if handle is None:
                raise ValueError("jwtguard: the verifier is closed")
            self._calls += 1
            return handle

    def _leave(self) -> None:
        with self._lock:
            self._calls -= 1
            if self._calls == 0 and self._handle is None:
                self._idle.notify_all()

    def _verified(self, data: Optional[bytes], token: Optional[bytes], check: Any, full: Any) -> Dict[str, Any]:
        """Run a verification of ``data`` (a token, or a header value: ``check`` and ``full``
        are the native calls for it) and return the claims as the caller's own dict.

        A token's claims are its payload, so once a token verified, its parsed claims are
        kept by the token's bytes (``token``; bounded, only with the token cache on) and a
        later call asks the library only for the verdict on ``data`` (``check``: the token
        cache answers it, with the time claims and the keys checked again) and copies the
        claims kept, instead of fetching and parsing JSON."""
        length = 0 if data is None else len(data)
        parsed = self._parsed
        if token is not None and len(token) > _PARSED_MAX_TOKEN:
            parsed = None
        with self._lock:
            handle = self._handle
            if handle is None:
                raise ValueError("jwtguard: the verifier is closed")
            self._calls += 1
        try:
            kept = None if parsed is None or token is None else parsed.get(token)
            if kept is not None:
                status = check(handle, data, length)
            else:
                claims = _native.claims_p()
                status = full(handle, data, length, ctypes.byref(claims))
        finally:
            self._leave()
        if status != STATUS_OK:
            error = AuthError(status)
            if kept is not None and parsed is not None and token is not None and error.reason in (
                "token_expired",
                "key_not_found",
            ):
                parsed.pop(token, None)  # the token is refused for good: its claims go
            raise error
        if kept is not None:
            return _own(kept)
        try:
            pointer = ctypes.c_void_p()
            size = ctypes.c_size_t()
            _check(lib.jwt_claims_json(claims, ctypes.byref(pointer), ctypes.byref(size)), "claims")
            text = ctypes.string_at(pointer.value or 0, size.value).decode("utf-8")
        finally:
            lib.jwt_claims_free(claims)
        result: Dict[str, Any] = json.loads(text)
        if parsed is not None and token is not None:
            nested = tuple(k for k, v in result.items() if isinstance(v, (dict, list)))
            entry = (_own((result, nested)), nested)
            with self._lock:  # the bound holds whatever other threads do
                while len(parsed) >= self._parsed_max:
                    del parsed[next(iter(parsed))]  # the oldest (dicts keep insertion order)
                parsed[token] = entry
        return result

    def verify(self, token: Union[str, bytes]) -> Dict[str, Any]:
        """Verify a token and return its claims, or raise :class:`AuthError`."""
        if isinstance(token, str):
            data = token.encode("utf-8", "surrogatepass")
        elif isinstance(token, bytes):
            data = bytes(token)
        else:
            raise AuthError(111, "Token must be a string")
        return self._verified(data, data, _verify_status, _verify)

    def verify_authorization(
        self,
        header_value: Optional[str],
        *,
        dpop: Union[None, str, Iterable[str]] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Verify the token of an ``Authorization`` header value (``None`` when the header is
        absent): ``Bearer <token>`` or ``DPoP <token>``, scheme in any case, exactly one token.

        A DPoP-bound token (RFC 9449) needs ``DPoP <token>`` and its proof: ``dpop`` is the
        request's ``DPoP`` header (a list when it came more than once: that is refused), and
        ``method`` (``"GET"``) and ``url`` (the URL the client addressed, e.g.
        ``"https://api.example/api/private"``; a query is ignored) are what the proof must be
        for. A bound token as a bearer token is refused (``dpop_bound_token_as_bearer``)."""
        if dpop is not None or method is not None or url is not None:
            return self._verify_request(header_value, dpop, method, url)
        if header_value is None:
            return self._verified(None, None, _verify_authorization_status, _verify_authorization)
        data = header_value.encode("utf-8", "surrogatepass")
        # The library accepts only visible ASCII, spaces and tabs, and exactly a scheme and a
        # token: for a header it accepts, the second of two whitespace-split fields is the
        # very token it verified, so claims are kept by the token, whatever the spacing or
        # the scheme's case (one token cannot take many entries).
        fields = data.split()
        token = fields[1] if len(fields) == 2 else None
        return self._verified(data, token, _verify_authorization_status, _verify_authorization)

    def _verify_request(
        self,
        header_value: Optional[str],
        dpop: Union[None, str, Iterable[str]],
        method: Optional[str],
        url: Optional[str],
    ) -> Dict[str, Any]:
        def encoded(value: Optional[str]) -> Optional[bytes]:
            return None if value is None else value.encode("utf-8", "surrogatepass")

        if dpop is not None and not isinstance(dpop, str):
            dpop = ", ".join(dpop)  # several DPoP lines, joined as HTTP joins them: refused
        proof, verb, where = encoded(dpop), encoded(method), encoded(url)
        rest = (
            proof,
            0 if proof is None else len(proof),
            verb,
            0 if verb is None else len(verb),
            where,
            0 if where is None else len(where),
        )

        def check(handle: int, data: Optional[bytes], length: int) -> int:
            return int(_verify_request_status(handle, data, length, *rest))

        def full(handle: int, data: Optional[bytes], length: int, claims: Any) -> int:
            return int(_verify_request(handle, data, length, *rest, claims))

        data = encoded(header_value)
        fields = data.split() if data is not None else []
        token = fields[1] if len(fields) == 2 else None
        return self._verified(data, token, check, full)

    def challenge(
        self,
        status: Union[int, AuthError],
        authorization: Optional[str] = None,
        realm: str = "api",
        scope: Optional[str] = None,
    ) -> Optional[str]:
        """The ``WWW-Authenticate`` value for a refusal, as every jwtguard host sends it: the
        Bearer challenge (RFC 6750) and, unless DPoP is off, the DPoP challenge with the
        allowed ``algs`` (RFC 9449 section 7.1), the error on the scheme the refusal is about.

        ``status`` is the refusal itself (an :class:`AuthError`) or its jwtguard status number
        (:attr:`AuthError.status`: ``100`` token_missing, ``400`` insufficient_scope, ...),
        never its HTTP status (:attr:`AuthError.status_code`): the two overlap (jwtguard's
        400 is a 403, its 500 a 503), so an HTTP status cannot be told apart, and a number
        that is no jwtguard status (``401``, ``403``) raises :class:`ValueError` saying so.
        ``authorization`` is the request's header (its scheme decides where the error goes),
        ``scope`` the route's required scopes, space-separated (default: the scope an
        ``insufficient_scope`` refusal carries). ``None`` for a status that carries no
        challenge (503)."""
        if isinstance(status, AuthError):
            if scope is None:
                scope = getattr(status, "scope", None)
            number = status.status
        elif isinstance(status, int) and not isinstance(status, bool):
            number = int(status)
        else:
            raise TypeError(f"jwtguard: challenge takes an AuthError or its status, not {type(status).__name__}")
        if not 0 <= number <= 0xFFFFFFFF or lib.jwt_status_reason(number) == b"unknown":
            raise ValueError(
                f"jwtguard: challenge: {number} is not a jwtguard status; pass the AuthError (or its "
                ".status, e.g. 100 for token_missing), not an HTTP status (AuthError.status_code)"
            )
        auth = None if authorization is None else authorization.encode("utf-8", "surrogatepass")
        place = _text(realm)
        wanted = None if not scope else _text(scope)
        needed = ctypes.c_size_t()
        size = 512
        handle = self._enter()
        try:
            while True:
                buffer = ctypes.create_string_buffer(size)
                result = lib.jwt_verifier_challenge(
                    handle,
                    number,
                    auth,
                    0 if auth is None else len(auth),
                    place,
                    len(place),
                    wanted,
                    0 if wanted is None else len(wanted),
                    buffer,
                    size,
                    ctypes.byref(needed),
                )
                if result == STATUS_INVALID_ARGUMENT and needed.value >= size:
                    size = needed.value + 1
                    continue
                _check(result, "challenge")
                break
        finally:
            self._leave()
        text = buffer.value.decode("ascii", "replace")
        return text or None

    def refresh(self) -> None:
        """Fetch the keys now and wait (raises :class:`AuthError` when they cannot be had)."""
        handle = self._enter()
        try:
            status = lib.jwt_verifier_refresh(handle)
        finally:
            self._leave()
        if status != STATUS_OK:
            raise AuthError(status)

    def prefetch(self) -> None:
        """Start fetching the keys in the background if they are missing or due."""
        handle = self._enter()
        try:
            lib.jwt_verifier_prefetch(handle)
        finally:
            self._leave()

    def fetching(self) -> bool:
        """Whether the keys are being fetched right now. With ``non_blocking=True`` a refusal
        for ``key_not_found`` or ``keys_unavailable`` while this is true is worth retrying
        shortly (a rotated key, a cold start) instead of answering it."""
        handle = self._enter()
        try:
            return bool(lib.jwt_verifier_fetching(handle))
        finally:
            self._leave()

    def fetch_epoch(self) -> int:
        """How many key fetches (and discoveries) have ended in this process. Read it before a
        verification: a refusal for want of keys is worth retrying when a fetch is running
        (:meth:`fetching`) or this number moved meanwhile (a fetch ended with keys the
        verification did not see yet)."""
        handle = self._enter()
        try:
            return int(lib.jwt_verifier_fetch_epoch(handle))
        finally:
            self._leave()

    def counters(self) -> Dict[str, int]:
        """Verifications by outcome and JWKS cache counters."""
        handle = self._enter()
        try:
            return {name: int(lib.jwt_verifier_count(handle, i)) for i, name in enumerate(_COUNTERS)}
        finally:
            self._leave()

    def close(self) -> None:
        """Release the verifier, once no call in another thread uses it any more (later calls
        raise :class:`ValueError`). Safe to call more than once."""
        with self._idle:
            handle, self._handle = self._handle, None
            while self._calls:
                self._idle.wait()
        if handle is not None:
            lib.jwt_verifier_free(handle)

    def __enter__(self) -> "Verifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass


_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG}


def _log_message(_userdata: Any, level: int, message: int, length: int) -> None:  # from any thread
    _log.log(_LEVELS.get(level, logging.INFO), ctypes.string_at(message, length).decode("utf-8", "replace"))


_forward_log = _native.LOG_CALLBACK(_log_message)


# The library's messages (fetch failures, skipped keys, stale keys) go to the "jwtguard"
# logger; INFO and above by default.
lib.jwt_set_log_callback(_forward_log, None, 3)


@atexit.register
def _detach_log_callback() -> None:
    # Background fetch threads must never run Python code once the interpreter shuts down
    # (it ends such threads with pthread_exit, which aborts inside Rust). The call returns
    # once no callback is running (ctypes releases the GIL meanwhile, so one in flight ends).
    lib.jwt_set_log_callback(_native.LOG_CALLBACK(), None, 1)
