"""pytest fixtures shared by the suites (import them into a conftest.py or a test module):
a real `jwtguard dev-issuer` and the PyJWT minter with its loopback JWKS, one of each per
session."""

from __future__ import annotations

import pytest

from harness import DevIssuer
from minter import Minter


@pytest.fixture(scope="session")
def issuer():
    dev = DevIssuer()
    yield dev
    dev.stop()


@pytest.fixture(scope="session")
def minter():
    m = Minter()
    yield m
    m.close()
