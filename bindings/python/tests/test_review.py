"""Regression tests for the outside review (issue 8) in the Python binding: closing a verifier
other threads use, interpreter shutdown while a fetch logs, negative durations. Each test
names the review item it covers. Crash-prone scenarios run in a child interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER, ROOT


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "bindings" / "python" / "src"), str(ROOT / "tests" / "support")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=env)


def test_item5_close_while_other_threads_verify_is_safe(minter):
    """close() while two threads are inside their verification loops: each thread has verified
    before close() runs (a barrier), and keeps verifying until it is told the verifier is
    closed: every call is either a verification or ValueError, never a crash."""
    result = run_python(
        f"""
        import threading, jwtguard
        token = {minter.token()!r}
        jwks = {minter.jwks!r}
        outcomes = {{"ok": 0, "closed": 0}}
        lock = threading.Lock()
        for _ in range(200):
            v = jwtguard.Verifier({MINTED_ISSUER!r}, {AUDIENCE!r}, jwks=jwks)
            running = threading.Barrier(3)
            def work():
                v.verify(token)
                with lock:
                    outcomes["ok"] += 1
                running.wait()
                while True:
                    try:
                        v.verify(token)
                    except ValueError:
                        with lock:
                            outcomes["closed"] += 1
                        return
                    with lock:
                        outcomes["ok"] += 1
            threads = [threading.Thread(target=work) for _ in range(2)]
            for t in threads:
                t.start()
            running.wait()
            v.close()
            for t in threads:
                t.join()
        print(outcomes["ok"], outcomes["closed"])
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ok, closed = map(int, result.stdout.split())
    assert closed == 200 * 2, "every thread saw the verifier closed under it"
    assert ok >= 200 * 2


def test_item6_shutdown_while_a_background_fetch_logs_does_not_abort():
    result = run_python(
        """
        import logging, socket, time, jwtguard
        logging.basicConfig(level=logging.INFO)
        # A JWKS URL that accepts connections and never answers.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = "http://127.0.0.1:%d/jwks.json" % listener.getsockname()[1]
        v = jwtguard.Verifier("https://tenant.example/", "https://api.example", jwks_uri=url, timeouts=(1, 1))
        v.prefetch()

        class Slow:
            def __del__(self):
                time.sleep(2)

        slow = Slow()
        print("exiting")
        """,
        timeout=30,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "FATAL" not in result.stderr
    assert result.stdout.strip() == "exiting"


@pytest.mark.parametrize(
    "options",
    [
        {"leeway": -1},
        {"refetch_cooldown": -1},
        {"max_stale": -1},
        {"ttl": -5},
        {"refresh_ahead": -1},
        {"ttl_bounds": (-1, 60)},
        {"backoff": (1, -2)},
        {"timeouts": (-0.5, 1)},
        {"max_jwks_size": -1},
        {"max_token_size": -1},
        {"leeway": float("nan")},
    ],
)
def test_item7_negative_durations_are_refused(minter, options):
    with pytest.raises(ValueError, match="negative"):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, **options)


@pytest.mark.parametrize(
    "options",
    [{"leeway": 10**12}, {"max_stale": 10**9}, {"refetch_cooldown": 2**63}, {"timeouts": (1, 10**7)}],
)
def test_item7_absurd_durations_are_refused(minter, options):
    with pytest.raises(ValueError, match="invalid_argument"):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, **options)


def test_item7_an_old_token_stays_expired_with_the_largest_leeway(minter):
    old = minter.token(iat=int(time.time()) - 400_000_000, exp=int(time.time()) - 315_360_000)
    with jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, leeway=3600) as v:
        with pytest.raises(jwtguard.AuthError) as refused:
            v.verify(old)
    assert refused.value.reason == "token_expired"
    with pytest.raises(TypeError):
        jwtguard.Verifier(MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, leeway="60")
