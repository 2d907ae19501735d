"""Shared fixtures: a real `jwtguard dev-issuer` on loopback, a loopback JWKS server for
tokens minted independently with PyJWT, and the library under test (JWTGUARD_LIBRARY)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fixtures import issuer, minter  # noqa: E402,F401 (fixtures)
from harness import AUDIENCE, JWTGUARD_BIN, MINTED_ISSUER, DevIssuer, free_port, http  # noqa: E402,F401


@pytest.fixture()
def verifier(minter):
    import jwtguard

    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks_uri=minter.jwks_uri, algorithms=("RS256", "PS256", "ES256", "EdDSA")) as v:
        yield v


def pytest_sessionfinish(session, exitstatus):
    """The library's own leak counters once the suite is done: no claims handle and no config
    is left, and no verifier once every Verifier is collected (`make test` runs this suite
    under PYTHONMALLOC=debug and -X dev)."""
    import gc

    import jwtguard

    gc.collect()
    live = jwtguard.live_handles()
    if any(live.values()):
        session.exitstatus = 1
        print(f"\njwtguard handles left at exit: {live}", file=sys.stderr)
