"""The shipped nginx auth_request config (bindings/proxies/nginx.conf) in front of the real
`jwtguard serve`, for what concerns nginx alone (third outside review, issue 23): requests
nginx refuses before any check (item 14), unsupported schemes (item 9), claims with edge
spaces (item 15) and the URL a DPoP proof is checked against (item 2)."""

from __future__ import annotations

import json

import pytest

from dpop import NO_TOKEN_CHALLENGE, DpopClient
from harness import RecordingUpstream, raw_request
from test_proxies import start_nginx


@pytest.fixture(scope="module")
def upstream():
    u = RecordingUpstream()
    yield u
    u.close()


@pytest.fixture(scope="module")
def nginx(serve, upstream):
    proxy = start_nginx(serve.port, upstream.port)
    yield proxy
    proxy.close()


MALFORMED = [
    b"GET /api/private%00 HTTP/1.1",
    b"GET /api/pri\x00vate HTTP/1.1",
    b"GET /api/pri vate HTTP/1.1",
    b"GET /api/private HTTP/1.1 x",
    b"G@T /api/private HTTP/1.1",
    b"GET /api/private%zz HTTP/1.1",
    b"GET /../api/private HTTP/1.1",
    b"GET /api/../../private HTTP/1.1",
]


@pytest.mark.parametrize("line", MALFORMED, ids=lambda line: line.decode("latin-1").replace("\x00", "NUL"))
def test_item14_nginx_answers_a_malformed_request_400_with_the_projects_json(nginx, issuer, line):
    for authorization in (b"", b"Authorization: Bearer " + issuer.token().encode() + b"\r\n"):
        status, headers, body = raw_request(nginx.port, line + b"\r\nHost: api\r\n" + authorization
                                            + b"Connection: close\r\n\r\n")
        assert status == 400, (line, status, body)
        assert headers.get("content-type") == ["application/json"], (line, headers)
        answer = json.loads(body)
        assert set(answer) == {"code", "description"} and answer["code"] == "bad_request", (line, answer)
    assert "empty URI in redirect to named location" not in nginx.text()


@pytest.mark.parametrize("first, then", [
    (b"Authorization: Bearer {good}", b"Authorization: Bearer x.y.z"),
    (b"Authorization: Bearer x.y.z", b"Authorization: Bearer {good}"),
    (b"Authorization: Bearer x.y.z", b"Authorization: Bearer x.y.z"),
    # nginx refuses these itself, with the Authorization line read: no Host in HTTP/1.1, a
    # second Host. Still 400, never the token's own verdict (401).
    (b"Authorization: Bearer x.y.z", None),
    (b"Authorization: Bearer x.y.z", b"Host: other"),
])
def test_item14_a_request_nginx_refuses_after_reading_authorization_is_400(nginx, issuer, first, then):
    good = issuer.token().encode()
    lines = [line.replace(b"{good}", good) for line in (first, then) if line is not None]
    host = b"Host: api\r\n" if then is not None else b""
    request = b"GET /api/private HTTP/1.1\r\n" + host + b"".join(line + b"\r\n" for line in lines) + b"Connection: close\r\n\r\n"
    status, headers, body = raw_request(nginx.port, request)
    assert status == 400, (lines, status, body)
    assert json.loads(body)["code"] == "invalid_header"
    assert len(headers["www-authenticate"]) == 1 and 'error="invalid_request"' in headers["www-authenticate"][0]


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Token abc", "Digest a=b"])
def test_item9_an_unsupported_scheme_is_401_without_an_error_code_through_nginx(nginx, value):
    status, headers, body = nginx.get("/api/private", headers={"Authorization": value})
    assert status == 401
    assert headers.get_all("WWW-Authenticate") == [NO_TOKEN_CHALLENGE]
    assert body["code"] == "invalid_header"
    status, headers, body = nginx.get("/api/private", headers={"Authorization": "Bearer"})
    assert status == 400 and body["code"] == "invalid_header"
    assert 'error="invalid_request"' in headers["WWW-Authenticate"]


def test_item15_a_claims_edge_spaces_reach_the_upstream_escaped_through_nginx(nginx, upstream, minter):
    status, _, _ = nginx.get("/app/x", minter.token("ES256", sub="admin ", client_id=" lead"))
    assert status == 200
    seen = upstream.seen[-1]
    assert seen["x-jwt-sub"] == "admin\\u0020"
    assert seen["x-jwt-client-id"] == "\\u0020lead"


def test_item2_the_proof_url_is_the_routed_host_not_a_host_header_that_disagrees(nginx, issuer):
    client = DpopClient("ES256")
    bound = client.token_from(issuer.url)

    def call(target: str, host: str, proof_url: str):
        proof = client.proof(url=proof_url, token=bound)
        request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: DPoP {bound}\r\n"
                   f"DPoP: {proof}\r\nConnection: close\r\n\r\n").encode()
        status, headers, _ = raw_request(nginx.port, request)
        return status, headers.get("www-authenticate", [""])[0]

    assert call("/api/private", "api", "http://api/api/private")[0] == 200
    assert call("/api/private", "api:8080", "http://api:8080/api/private")[0] == 200
    # The request line names the host nginx routes by: the proof must be for it, not for Host.
    assert call("http://b.example/api/private", "api", "http://b.example/api/private")[0] == 200
    status, challenge = call("http://b.example/api/private", "api", "http://api/api/private")
    assert status == 401 and "another URL" in challenge, challenge
