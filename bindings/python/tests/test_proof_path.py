"""The pieces the integrations share to build a DPoP proof URL from the raw request target
(jwtguard._http.proof_path) and to tell several Authorization lines a WSGI server joined from
one (joined_lines). The integrations' own tests (framework_checks.py) check them through each
framework; these are the cases a framework's client cannot send (absolute-form targets,
raw bytes, a server that hands over a decoded target)."""

from __future__ import annotations

import pytest

from jwtguard._http import joined_lines, proof_path


@pytest.mark.parametrize(
    ("raw", "routed", "path"),
    [
        # The target as sent: the query cut, percent-encoding kept.
        (b"/a%3Fb?x=1", [("/a?b", "")], "/a%3Fb"),
        (b"/a%2F..%2Fb", [("/a/../b", "")], "/a%2F..%2Fb"),
        (b"/a/..%2Fb", [("/a/../b", "")], "/a/..%2Fb"),
        (b"/a%253F", [("/a%3F", "")], "/a%253F"),
        # Absolute-form: the path part only.
        ("http://other.example:8080/a/b?q", [("/a/b", "")], "/a/b"),
        ("HTTPS://h", [("/", "")], "/"),
        # Bytes outside visible ASCII, and '#', percent-encoded (ASGI bytes, WSGI Latin-1 text).
        (b"/caf\xc3\xa9", [("/caf\u00e9", "")], "/caf%C3%A9"),
        ("/caf\xc3\xa9", [("/caf\u00e9", "")], "/caf%C3%A9"),
        (b"/a#b", [("/a#b", "")], "/a%23b"),
        (b"/a b", [("/a b", "")], "/a%20b"),
        # A mount prefix the target lacks goes first; one it has is not doubled.
        (b"/x", [("/v1/x", "/v1")], "/v1/x"),
        (b"/v1/x", [("/v1/x", "/v1")], "/v1/x"),
        (b"/x", [("/x", "/v1"), ("/v1/x", "/v1")], "/x"),
        (b"/x", [("/v 1/x", "/v 1")], "/v%201/x"),
        # No raw target: the decoded path encoded again.
        (None, [("/a?b#c%d \u00e9", "")], "/a%3Fb%23c%25d%20%C3%A9"),
        (None, [("/a/b", "")], "/a/b"),
        (None, [("/a:b@c;d=e", "")], "/a:b@c;d=e"),
    ],
)
def test_proof_path(raw, routed, path):
    assert proof_path(raw, routed) == path


@pytest.mark.parametrize(
    ("raw", "routed"),
    [
        # A target that does not decode to the routed path: a server that hands over a decoded
        # target, a rewritten path, a part missing that is not the mount prefix.
        ("/a?b", [("/a?b", "")]),
        (b"/x", [("/y", "")]),
        (b"/x", [("/v1/x", "")]),
        (b"/x", [("/v1/x", "/v2")]),
        (b"http://h/y", [("http://h/y", "")]),  # h11 hands an absolute-form target to Starlette
        ("//evil/x", [("/evil/x", "")]),  # werkzeug's server reads //evil as an authority
        # Not an origin-form target.
        (b"*", [("*", "")]),
        (b"", [("", "")]),
        # Dot segments, which the core removes and the frameworks route as they are.
        (b"/a/../b", [("/a/../b", "")]),
        (b"/a/./b", [("/a/./b", "")]),
        (b"/a/%2e%2E/b", [("/a/../b", "")]),
        (b"/a/.%2e", [("/a/..", "")]),
        (b"/..", [("/..", "")]),
        (None, [("/a/../b", "")]),
        (None, [("/a/./b", "")]),
        (None, [("a", "")]),
        (None, []),
    ],
)
def test_no_proof_path(raw, routed):
    assert proof_path(raw, routed) is None


@pytest.mark.parametrize(
    "value",
    [None, "", "Bearer t", "DPoP t", "Basic eA==", "Digest a=b, c=d", 'Digest u="a,b", r="c"', 'Digest a="x\\",y", b=c',
     "Digest a = b ,c=d", "Token"],
)
def test_one_line(value):
    assert not joined_lines(value)


@pytest.mark.parametrize(
    "value",
    ["Basic x,Bearer t", "Basic x, Bearer t", "Basic x, ", "Basic x,", "Bearer t,", ",Bearer t", ",", "Digest a=b,",
     "Digest a=b, Bearer t", "Basic x, Basic", "Basic eA==, ", "Token a,Basic b", "Digest a=b,\tc", "Token,Token",
     "Digest a=b, c d=e", 'Digest a="b,c", '],
)
def test_joined_lines(value):
    assert joined_lines(value)
