"""Is a threadpool hop worth it for the FastAPI dependency? Per request, on one event loop:
the verification of a hot token (a token-cache hit) called in the loop, against the same call
sent to a worker thread (`anyio.to_thread.run_sync`, what FastAPI does for a sync dependency),
and a new token (an RS256 check) in the loop. Prints microseconds per call (median of 5).

    make build && PYTHONPATH=bindings/python/src JWTGUARD_LIBRARY=target/release/libjwtguard.so \
        JWTGUARD_BIN=target/release/jwtguard .venv/bin/python bindings/python/bench/fastapi_hop.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import anyio.to_thread

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from harness import AUDIENCE, DevIssuer  # noqa: E402

import jwtguard  # noqa: E402


async def per_call(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    issuer = DevIssuer()
    try:
        verifier = jwtguard.Verifier(issuer.url, AUDIENCE, jwks_uri=issuer.url + ".well-known/jwks.json",
                                     non_blocking=True)
        header = f"Bearer {issuer.token('read:messages')}"
        verifier.refresh()
        verifier.verify_authorization(header)
        fresh = [f"Bearer {issuer.token('read:messages')}" for _ in range(2000)]
        uncached = jwtguard.Verifier(issuer.url, AUDIENCE, jwks_uri=issuer.url + ".well-known/jwks.json",
                                     token_cache=0)
        uncached.refresh()

        async def in_loop():
            verifier.verify_authorization(header)

        async def hop():
            await anyio.to_thread.run_sync(verifier.verify_authorization, header)

        new_tokens = iter(fresh * 100)

        async def new_in_loop():
            uncached.verify_authorization(next(new_tokens))

        results = {"hot token, in the loop": [], "hot token, threadpool hop": [], "new token, in the loop": []}
        for _ in range(5):
            results["hot token, in the loop"].append(await per_call(in_loop, 20000))
            results["hot token, threadpool hop"].append(await per_call(hop, 2000))
            results["new token, in the loop"].append(await per_call(new_in_loop, 2000))
        for name, values in results.items():
            print(f"{name:<28} {statistics.median(values):8.1f} µs/call")
    finally:
        issuer.stop()


if __name__ == "__main__":
    asyncio.run(main())
