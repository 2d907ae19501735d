"""The GIL is released during verification: 4 threads verify concurrently without errors."""

from __future__ import annotations

import threading
import time

import jwtguard
from conftest import AUDIENCE, MINTED_ISSUER


def test_four_threads_verify_concurrently(minter):
    tokens = [minter.token(alg) for alg in ("RS256", "PS256", "ES256", "EdDSA")]
    errors: list[BaseException] = []
    counts = [0] * 4
    inside = threading.Semaphore(0)
    with jwtguard.Verifier(
        MINTED_ISSUER, AUDIENCE, jwks=minter.jwks, algorithms=("RS256", "PS256", "ES256", "EdDSA")
    ) as verifier:

        def work(i: int) -> None:
            inside.release()
            deadline = time.monotonic() + 1.0
            try:
                while time.monotonic() < deadline:
                    claims = verifier.verify(tokens[i])
                    assert jwtguard.has_scope(claims, "read:messages")
                    counts[i] += 1
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for _ in threads:
            assert inside.acquire(timeout=5)
        for t in threads:
            t.join()
        assert not errors, errors
        assert all(c > 10 for c in counts), counts
        assert verifier.counters()["verify_ok"] == sum(counts)
        assert verifier.counters()["verify_failed"] == 0
