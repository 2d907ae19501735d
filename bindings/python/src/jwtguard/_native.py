"""Loads the jwtguard shared library and declares every function used, once.

The library is looked up in the package folder (where the wheel puts it); the environment
variable ``JWTGUARD_LIBRARY`` overrides that path for development. Plain ``ctypes.CDLL`` calls
release the GIL, so verifications in several threads run in parallel.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    c_bool,
    c_char_p,
    c_double,
    c_size_t,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any

_NAMES = {
    "darwin": ("libjwtguard.dylib",),
    "win32": ("jwtguard.dll",),
}


def _library_path() -> str:
    override = os.environ.get("JWTGUARD_LIBRARY")
    if override:
        return override
    here = Path(__file__).resolve().parent
    names = _NAMES.get(sys.platform, ("libjwtguard.so",))
    for name in names:
        if (here / name).exists():
            return str(here / name)
    # setuptools-rust may add the interpreter's extension suffix.
    for candidate in sorted(here.glob("libjwtguard*")):
        if candidate.suffix in (".so", ".dylib", ".dll"):
            return str(candidate)
    raise ImportError(
        f"jwtguard: the shared library is not in {here}; install the package with "
        "`pip install ./bindings/python` or set JWTGUARD_LIBRARY to libjwtguard.so"
    )


lib = ctypes.CDLL(_library_path())

# Opaque handles are plain pointers on the Python side.
config_p = c_void_p
verifier_p = c_void_p
claims_p = c_void_p

# void (*jwt_log_callback)(void *userdata, uint32_t level, const char *message, size_t len)
LOG_CALLBACK = CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_size_t)


def _declare(name: str, restype: Any, *argtypes: Any) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


# const char *jwt_version(void);
_declare("jwt_version", c_char_p)
# const char *jwt_status_reason(uint32_t status);  (and _code, _description, _rfc6750_error)
for _name in ("jwt_status_reason", "jwt_status_code", "jwt_status_description", "jwt_status_rfc6750_error"):
    _declare(_name, c_char_p, c_uint32)
# uint16_t jwt_status_http_status(uint32_t status);
_declare("jwt_status_http_status", c_uint16, c_uint32)

# jwt_config *jwt_config_new(void);  void jwt_config_free(jwt_config *);
_declare("jwt_config_new", config_p)
_declare("jwt_config_free", None, config_p)
# jwt_status jwt_config_add_issuer_config(jwt_config *, const jwt_config *);
_declare("jwt_config_add_issuer_config", c_uint32, config_p, config_p)
# jwt_status jwt_config_<text setter>(jwt_config *, const char *, size_t);
for _name in (
    "jwt_config_add_issuer",
    "jwt_config_add_audience",
    "jwt_config_add_algorithm",
    "jwt_config_add_required_claim",
    "jwt_config_set_jwks_uri",
    "jwt_config_set_jwks_json",
    "jwt_config_set_jwks_file",
    "jwt_config_set_snapshot",
    "jwt_config_set_ca_file",
):
    _declare(_name, c_uint32, config_p, c_char_p, c_size_t)
# jwt_status jwt_config_<seconds setter>(jwt_config *, uint64_t);
for _name in (
    "jwt_config_set_leeway",
    "jwt_config_set_cache_ttl",
    "jwt_config_set_refetch_cooldown",
    "jwt_config_set_refresh_ahead",
    "jwt_config_set_max_stale",
    "jwt_config_set_token_cache",
):
    _declare(_name, c_uint32, config_p, c_uint64)
# jwt_status jwt_config_<flag setter>(jwt_config *, bool);
for _name in ("jwt_config_set_strict", "jwt_config_set_non_blocking", "jwt_config_set_allow_insecure_http"):
    _declare(_name, c_uint32, config_p, c_bool)
# jwt_status jwt_config_set_max_token_size(jwt_config *, size_t);  (and _max_jwks_size)
_declare("jwt_config_set_max_token_size", c_uint32, config_p, c_size_t)
_declare("jwt_config_set_max_jwks_size", c_uint32, config_p, c_size_t)
# jwt_status jwt_config_set_backoff(jwt_config *, uint64_t initial_ms, uint64_t max_ms);
_declare("jwt_config_set_backoff", c_uint32, config_p, c_uint64, c_uint64)
# jwt_status jwt_config_set_fetch_timeouts(jwt_config *, uint64_t connect_ms, uint64_t total_ms);
_declare("jwt_config_set_fetch_timeouts", c_uint32, config_p, c_uint64, c_uint64)
# jwt_status jwt_config_set_ttl_bounds(jwt_config *, uint64_t min_s, uint64_t max_s);
_declare("jwt_config_set_ttl_bounds", c_uint32, config_p, c_uint64, c_uint64)

# jwt_status jwt_verifier_new(const jwt_config *, jwt_verifier **);
_declare("jwt_verifier_new", c_uint32, config_p, POINTER(verifier_p))
# void jwt_verifier_free(jwt_verifier *);
_declare("jwt_verifier_free", None, verifier_p)
# jwt_status jwt_verify(const jwt_verifier *, const char *, size_t, jwt_claims **);
_declare("jwt_verify", c_uint32, verifier_p, c_char_p, c_size_t, POINTER(claims_p))
# jwt_status jwt_verify_authorization(const jwt_verifier *, const char *, size_t, jwt_claims **);
_declare("jwt_verify_authorization", c_uint32, verifier_p, c_char_p, c_size_t, POINTER(claims_p))
# jwt_status jwt_verify_status(const jwt_verifier *, const char *, size_t);  (and _authorization_)
_declare("jwt_verify_status", c_uint32, verifier_p, c_char_p, c_size_t)
_declare("jwt_verify_authorization_status", c_uint32, verifier_p, c_char_p, c_size_t)
# jwt_status jwt_verify_request(const jwt_verifier *, authorization, len, dpop, len, method, len,
#                               url, len, jwt_claims **);  (and _status, without the claims)
_REQUEST = (verifier_p, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t, c_char_p, c_size_t)
_declare("jwt_verify_request", c_uint32, *_REQUEST, POINTER(claims_p))
_declare("jwt_verify_request_status", c_uint32, *_REQUEST)
# jwt_status jwt_verifier_challenge(const jwt_verifier *, uint32_t status, authorization, len,
#                                   realm, len, scope, len, char *buffer, size_t, size_t *needed);
_declare(
    "jwt_verifier_challenge",
    c_uint32,
    verifier_p,
    c_uint32,
    c_char_p,
    c_size_t,
    c_char_p,
    c_size_t,
    c_char_p,
    c_size_t,
    ctypes.c_char_p,
    c_size_t,
    POINTER(c_size_t),
)
# jwt_status jwt_config_set_dpop(jwt_config *, uint32_t mode);
_declare("jwt_config_set_dpop", c_uint32, config_p, c_uint32)
# jwt_status jwt_config_add_dpop_algorithm(jwt_config *, const char *, size_t);
_declare("jwt_config_add_dpop_algorithm", c_uint32, config_p, c_char_p, c_size_t)
# jwt_status jwt_config_add_dpop_origin(jwt_config *, const char *, size_t);
_declare("jwt_config_add_dpop_origin", c_uint32, config_p, c_char_p, c_size_t)
# jwt_status jwt_config_set_dpop_window / _replay_cache(jwt_config *, uint64_t);
_declare("jwt_config_set_dpop_window", c_uint32, config_p, c_uint64)
_declare("jwt_config_set_dpop_replay_cache", c_uint32, config_p, c_uint64)
# jwt_status jwt_verifier_refresh(const jwt_verifier *);  (and _prefetch)
_declare("jwt_verifier_refresh", c_uint32, verifier_p)
_declare("jwt_verifier_prefetch", c_uint32, verifier_p)
# bool jwt_verifier_fetching(const jwt_verifier *);
_declare("jwt_verifier_fetching", c_bool, verifier_p)
# uint64_t jwt_verifier_fetch_epoch(const jwt_verifier *);
_declare("jwt_verifier_fetch_epoch", c_uint64, verifier_p)
# uint64_t jwt_verifier_count(const jwt_verifier *, uint32_t counter);
_declare("jwt_verifier_count", c_uint64, verifier_p, c_uint32)
# uint64_t jwt_verifier_count_status(const jwt_verifier *, uint32_t status);
_declare("jwt_verifier_count_status", c_uint64, verifier_p, c_uint32)

# bool jwt_is_authority(const char *value, size_t len);
_declare("jwt_is_authority", c_bool, c_char_p, c_size_t)
# uint64_t jwt_live_handles(uint32_t kind);
_declare("jwt_live_handles", c_uint64, c_uint32)
# void jwt_claims_free(jwt_claims *);
_declare("jwt_claims_free", None, claims_p)
# jwt_status jwt_claims_json(const jwt_claims *, const char **, size_t *);
_declare("jwt_claims_json", c_uint32, claims_p, POINTER(c_void_p), POINTER(c_size_t))
# bool jwt_has_scope_json(const char *json, size_t, const char *scope, size_t);
_declare("jwt_has_scope_json", c_bool, c_char_p, c_size_t, c_char_p, c_size_t)

# jwt_status jwt_set_log_callback(jwt_log_callback, void *userdata, uint32_t max_level);
_declare("jwt_set_log_callback", c_uint32, LOG_CALLBACK, c_void_p, c_uint32)

__all__ = ["lib", "LOG_CALLBACK", "verifier_p", "claims_p", "config_p", "c_double"]
