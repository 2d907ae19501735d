"""Regression tests for the third outside review (issue 23) against the real nginx with the
module: the URL a DPoP proof is checked against is the one the request was routed by (item 2),
its port the one the connection arrived on unless origins are pinned (items 2 and 17),
an internal redirect to another proof URL checks that URL (item 5), pinned and derived origins
(item 17), jwtguard_token_cache where a verifier is configured (item 13), several issuer names
with discovery (item 1), unsupported schemes (item 9) and claims with edge spaces (item 15).
Each test names the review item it covers."""

from __future__ import annotations

import shutil
import socket
import sys
import time

import pytest

from conftest import AUDIENCE, ROOT, Nginx, example_config, free_port, fresh_prefix, http

sys.path.insert(0, str(ROOT / "tests" / "support"))
from discovery import DiscoveryMinter  # noqa: E402
from dpop import NO_TOKEN_CHALLENGE, DpopClient  # noqa: E402
from fixtures import minter  # noqa: E402,F401 (a fixture)
from harness import MINTED_ISSUER, RecordingUpstream, raw_request  # noqa: E402
from test_review import MINIMAL, nginx_t  # noqa: E402

CONFIG = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    default_type application/json;
    jwtguard_issuer {issuer};
    jwtguard_audience {audience};
    jwtguard_token_cache 1000;

    # Two virtual hosts on one port, a the default server; each has its own verifier (and
    # replay cache).
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name a.example;
        root html;
        location = /nginx-up {{ return 204; }}
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}

        location /first/ {{
            jwtguard on;
            jwtguard_dpop_url http://a.example$request_uri;
            try_files /nonexistent @second;
        }}
        location @second {{
            jwtguard on;
            jwtguard_dpop_url http://b.example$request_uri;
            add_header X-Status $jwt_status always;
            try_files /api/private.json =404;
        }}
        location /same/ {{
            jwtguard on;
            jwtguard_dpop_url http://a.example$request_uri;
            try_files /nonexistent @same;
        }}
        location @same {{
            jwtguard on;
            jwtguard_dpop_url http://a.example$request_uri;
            try_files /api/private.json =404;
        }}

        location /cached/ {{ jwtguard on; jwtguard_token_cache 10; try_files /api/private.json =404; }}
        location /uncached/ {{ jwtguard on; jwtguard_token_cache off; try_files /api/private.json =404; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name b.example;
        root html;
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
    }}

    # A server with no name (takes any Host), and a location in it with pinned origins.
    server {{
        listen 127.0.0.1:{port2};
        root html;
        location = /nginx-up {{ return 204; }}
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
        location /pinned/ {{
            jwtguard on;
            jwtguard_dpop_origin https://api.example;
            jwtguard_dpop_origin http://api.example:{port2};
            try_files /api/private.json =404;
        }}
    }}

    # A catch-all pinned for the whole server.
    server {{
        listen 127.0.0.1:{port3};
        server_name _;
        jwtguard_dpop_origin http://api.example;
        root html;
        location = /nginx-up {{ return 204; }}
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def nginx(issuer):
    port, port2, port3 = free_port(), free_port(), free_port()
    path = fresh_prefix("review3")
    config = CONFIG.format(issuer=issuer.url, audience=AUDIENCE, port=port, port2=port2, port3=port3)
    server = Nginx(path, config, port)
    server.port2, server.port3 = port2, port3
    yield server
    server.close()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def client(issuer):
    c = DpopClient("ES256")
    c.bound = c.token_from(issuer.url)
    return c


def dpop_request(port: int, target: str, host: str, token: str, proof: str) -> tuple[int, dict, bytes]:
    """A DPoP call as raw bytes: `target` is the request line's (origin or absolute form)."""
    request = (f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: DPoP {token}\r\n"
               f"DPoP: {proof}\r\nConnection: close\r\n\r\n").encode()
    return raw_request(port, request)


def challenge_of(headers: dict) -> str:
    return headers.get("www-authenticate", [""])[0]


def test_item2_a_proof_is_checked_against_the_url_the_request_was_routed_by(nginx, client):
    port = nginx.port
    a_url = f"http://a.example:{port}/api/x"
    proof = client.proof(url=a_url, token=client.bound)
    status, _, _ = dpop_request(port, "/api/x", f"a.example:{port}", client.bound, proof)
    assert status == 200
    status, head, _ = dpop_request(port, "/api/x", f"a.example:{port}", client.bound, proof)
    assert status == 401 and "already used" in challenge_of(head)
    # The request line names b (nginx routes to server b, with its own replay cache) while Host
    # still says a: the proof made for a is not good at b.
    status, head, _ = dpop_request(port, f"http://b.example:{port}/api/x", f"a.example:{port}", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head), (status, head)
    # A proof for b's URL is good there, whatever Host says; the request line's port counts:
    # none is port 80, which this server is not on.
    fresh = client.proof(url=f"http://b.example:{port}/api/x", token=client.bound)
    status, _, _ = dpop_request(port, f"http://b.example:{port}/api/x", f"a.example:{port}", client.bound, fresh)
    assert status == 200
    fresh = client.proof(url="http://b.example/api/x", token=client.bound)
    status, head, _ = dpop_request(port, "http://b.example/api/x", f"a.example:{port}", client.bound, fresh)
    assert status == 401 and "another URL" in challenge_of(head)
    fresh = client.proof(url=a_url, token=client.bound)
    status, head, _ = dpop_request(port, "http://B.Example/api/x", f"a.example:{port}", client.bound, fresh)
    assert status == 401 and "another URL" in challenge_of(head)


def test_item5_a_redirect_to_another_proof_url_checks_that_url(nginx, client):
    port = nginx.port
    # The same verifier in both locations, another jwtguard_dpop_url in the second: the first
    # location accepts the proof, the second refuses it (it was for a.example).
    proof = client.proof(url="http://a.example/first/x", token=client.bound)
    status, head, body = dpop_request(port, "/first/x", "a.example", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head), (status, head, body)
    assert head["x-status"] == ["dpop_proof_url_mismatch"]
    # A proof for the second location's URL is refused by the first one.
    proof = client.proof(url="http://b.example/first/x", token=client.bound)
    status, head, _ = dpop_request(port, "/first/x", "a.example", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head)
    # The same URL in both: the verdict stands, and the proof was used once.
    proof = client.proof(url="http://a.example/same/x", token=client.bound)
    assert dpop_request(port, "/same/x", "a.example", client.bound, proof)[0] == 200
    status, head, _ = dpop_request(port, "/same/x", "a.example", client.bound, proof)
    assert status == 401 and "already used" in challenge_of(head)


def test_item17_a_spoofed_host_on_a_named_default_server_names_no_proof_url(nginx, client, issuer):
    port = nginx.port
    # Server a answers for a.example only; it gets evil.example as the default server.
    for host in ("evil.example", f"evil.example:{port}"):
        proof = client.proof(url=f"http://{host}/api/x", token=client.bound)
        status, head, _ = dpop_request(port, "/api/x", host, client.bound, proof)
        assert status == 401 and "another URL" in challenge_of(head), (host, status, head)
    time.sleep(0.2)
    assert 'a DPoP proof cannot be for "evil.example": not a server_name' in (nginx.prefix / "logs" / "error.log").read_text()
    # Its own name passes with its port (the one a client reaching it names), in any case.
    for host in (f"a.example:{port}", f"A.EXAMPLE:{port}"):
        proof = client.proof(url=f"http://{host.lower()}/api/x", token=client.bound)
        assert dpop_request(port, "/api/x", host, client.bound, proof)[0] == 200, host
    # Bearer tokens do not care which Host.
    status, _, _ = raw_request(port, (f"GET /api/x HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer "
                                      f"{issuer.token()}\r\nConnection: close\r\n\r\n").encode())
    assert status == 200


def test_item17_a_server_without_names_takes_any_host_unless_origins_are_pinned(nginx, client):
    port2, port3 = nginx.port2, nginx.port3
    # No server_name: any Host (documented: pin the origins there).
    proof = client.proof(url=f"http://evil.example:{port2}/api/x", token=client.bound)
    assert dpop_request(port2, "/api/x", f"evil.example:{port2}", client.bound, proof)[0] == 200
    # Pinned in a location: a spoofed Host is refused, each pinned origin passes.
    proof = client.proof(url="http://evil.example/pinned/x", token=client.bound)
    status, head, _ = dpop_request(port2, "/pinned/x", "evil.example", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head)
    proof = client.proof(url=f"http://api.example:{port2}/pinned/x", token=client.bound)
    assert dpop_request(port2, "/pinned/x", f"api.example:{port2}", client.bound, proof)[0] == 200
    # Pinned for the whole catch-all server (server_name _).
    proof = client.proof(url="http://api.example/api/x", token=client.bound)
    assert dpop_request(port3, "/api/x", "api.example", client.bound, proof)[0] == 200
    proof = client.proof(url="http://evil.example/api/x", token=client.bound)
    status, head, _ = dpop_request(port3, "/api/x", "evil.example", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head)


@pytest.mark.parametrize("origin", ["https://api.example/path", "api.example", "https://api.example?x=1"])
def test_item17_an_origin_that_is_not_one_fails_nginx_t(origin):
    result = nginx_t(MINIMAL.format(extra="", location=f"jwtguard_dpop_origin {origin};", port=free_port()))
    assert result.returncode != 0
    assert f'jwtguard: invalid jwtguard_dpop_origin (an origin is scheme://host[:port], no path) "{origin}"' \
        in result.stderr, result.stderr


@pytest.mark.parametrize("where", ["location", "server"])
def test_item13_token_cache_is_accepted_where_a_verifier_is_configured(where):
    for value in ("10", "off"):
        if where == "location":
            config = MINIMAL.format(extra="", location=f"jwtguard_token_cache {value};", port=free_port())
        else:
            config = MINIMAL.format(extra="", location="", port=free_port()).replace(
                "server { listen", f"server {{ jwtguard_token_cache {value}; listen")
            assert f"server {{ jwtguard_token_cache {value};" in config
        result = nginx_t(config)
        assert result.returncode == 0, (where, value, result.stderr)


@pytest.mark.parametrize("location, message", [
    ("jwtguard_token_cache 99999999999;", "out of range"),
    ("jwtguard_token_cache lots;", "needs a number of entries"),
    ("jwtguard_token_cache 10; jwtguard_token_cache 20;", "is duplicate"),
])
def test_item13_a_bad_token_cache_in_a_location_says_why(location, message):
    result = nginx_t(MINIMAL.format(extra="", location=location, port=free_port()))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_item13_locations_with_their_own_token_cache_verify(nginx, issuer):
    token = issuer.token()
    for path in ("/cached/x", "/uncached/x"):
        for _ in range(3):
            assert nginx.get(path, token)[0] == 200, path
        assert nginx.get(path, token[:-4] + "AAAA")[0] == 401, path
        assert nginx.get(path)[0] == 401, path


def test_item9_unsupported_schemes_are_401_without_an_error_code(issuer, prefix):
    port = free_port()
    nginx = Nginx(prefix, example_config(issuer.url, port), port)
    try:
        for value in ("Basic dXNlcjpwYXNz", "Token abc", "Digest a=b", "Negotiate YII="):
            status, headers, body = nginx.get("/api/private", headers={"Authorization": value})
            assert status == 401, value
            assert headers.get_all("WWW-Authenticate") == [NO_TOKEN_CHALLENGE], value
            assert body["code"] == "invalid_header", (value, body)
        # A malformed header of a scheme jwtguard takes stays 400.
        for value in ("Bearer", "Bearer a b", "DPoP"):
            status, headers, body = nginx.get("/api/private", headers={"Authorization": value})
            assert status == 400, value
            assert 'error="invalid_request"' in headers["WWW-Authenticate"], value
            assert body["code"] == "invalid_header", (value, body)
    finally:
        nginx.close()


def test_item1_several_issuer_names_with_discovery_each_use_their_own_keys(issuer, prefix):
    a = DiscoveryMinter()
    port = free_port()
    config = f"""
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    default_type application/json;
    jwtguard_issuer {a.url} {issuer.url};
    jwtguard_audience {AUDIENCE};
    jwtguard_algorithms RS256 ES256;
    server {{
        listen 127.0.0.1:{port};
        root html;
        location = /nginx-up {{ return 204; }}
        location /api/ {{ jwtguard on; add_header X-Iss $jwt_claim_iss always; try_files /api/private.json =404; }}
    }}
}}
"""
    nginx = Nginx(prefix, config, port)
    try:
        # Both names' own tokens pass (keys arrive in the background: the first request waits).
        status, headers, _ = nginx.get("/api/x", a.token())
        assert (status, headers["X-Iss"]) == (200, a.url)
        status, headers, _ = nginx.get("/api/x", issuer.token())
        assert (status, headers["X-Iss"]) == (200, issuer.url)
        # A's key signing a token that claims B: refused (tenant A cannot act as tenant B).
        status, headers, _ = nginx.get("/api/x", a.token(iss=issuer.url))
        assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"], headers
    finally:
        nginx.close()
        a.close()


def test_item15_a_claims_edge_spaces_reach_the_upstream_escaped(minter, prefix):
    upstream = RecordingUpstream()
    port = free_port()
    config = f"""
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    jwtguard_issuer {MINTED_ISSUER};
    jwtguard_audience {AUDIENCE};
    jwtguard_jwks_uri {minter.jwks_uri};
    jwtguard_claim_variable $jwt_client_id clientId;
    server {{
        listen 127.0.0.1:{port};
        location = /nginx-up {{ return 204; }}
        location /app/ {{
            jwtguard on;
            proxy_set_header X-Jwt-Sub $jwt_claim_sub;
            proxy_set_header X-Jwt-Client-Id $jwt_client_id;
            proxy_set_header X-Jwt-Tags $jwt_claim_tags;
            proxy_pass {upstream.url};
        }}
    }}
}}
"""
    nginx = Nginx(prefix, config, port)
    try:
        token = minter.token(sub="admin ", clientId=" lead", tags=[" a", "b "])
        status, _, body = nginx.get("/app/x", token)
        assert (status, body) == (200, {"upstream": "/app/x"})
        seen = upstream.seen[-1]
        assert seen["x-jwt-sub"] == "admin\\u0020"
        assert seen["x-jwt-client-id"] == "\\u0020lead"
        assert seen["x-jwt-tags"] == "\\u0020a b\\u0020"
        # Inner spaces are the claim's own.
        nginx.get("/app/x", minter.token(sub="ad min"))
        assert upstream.seen[-1]["x-jwt-sub"] == "ad min"
    finally:
        nginx.close()
        upstream.close()


# Items 2 and 17, the port: nginx routes by the listening address and the name, never by the
# port a client writes in Host or in an absolute-form request line. Two servers answer for one
# name on two ports, each with its own verifier and replay cache; a location of the first pins
# a public origin on another port (port mapping).
PORTS_CONFIG = """
load_module modules/ngx_http_jwtguard_module.so;
worker_processes 1;
daemon off;
pid nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    default_type application/json;
    jwtguard_issuer {issuer};
    jwtguard_audience {audience};
    server {{
        listen 127.0.0.1:{port};
        server_name api.example;
        root html;
        location = /nginx-up {{ return 204; }}
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
        location /public/ {{
            jwtguard on;
            jwtguard_dpop_origin https://api.example;
            jwtguard_dpop_origin http://api.example:{public};
            try_files /api/private.json =404;
        }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        server_name api.example;
        root html;
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
    }}
    server {{
        listen unix:{socket};
        server_name api.example;
        root html;
        location /api/ {{ jwtguard on; try_files /api/private.json =404; }}
        location /public/ {{ jwtguard on; jwtguard_dpop_origin http://api.example; try_files /api/private.json =404; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def two_ports(issuer):
    port, port2, public = free_port(), free_port(), free_port()
    path = fresh_prefix("review3-ports")
    config = PORTS_CONFIG.format(issuer=issuer.url, audience=AUDIENCE, port=port, port2=port2, public=public,
                                 socket=path / "api.sock")
    server = Nginx(path, config, port)
    server.port2, server.public = port2, public
    yield server
    server.close()
    shutil.rmtree(path, ignore_errors=True)


def test_item2_a_proof_used_at_one_port_is_not_good_at_another_server_of_that_name(two_ports, client):
    port, port2 = two_ports.port, two_ports.port2
    url2 = f"http://api.example:{port2}/api/x"
    proof = client.proof(url=url2, token=client.bound)
    assert dpop_request(port2, "/api/x", f"api.example:{port2}", client.bound, proof)[0] == 200
    status, head, _ = dpop_request(port2, "/api/x", f"api.example:{port2}", client.bound, proof)
    assert status == 401 and "already used" in challenge_of(head)
    # The first server, with its own replay cache, reached with Host naming the second's port.
    status, head, _ = dpop_request(port, "/api/x", f"api.example:{port2}", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head), (status, head)
    # The same with an absolute-form request line naming the second's port (one or two spaces
    # before it: nginx takes both), whatever Host says.
    for line, host in ((url2, "api.example"), (url2, f"api.example:{port}"), (f" {url2}", f"api.example:{port2}")):
        fresh = client.proof(url=url2, token=client.bound)
        status, head, _ = dpop_request(port, line, host, client.bound, fresh)
        assert status == 401 and "another URL" in challenge_of(head), (line, host, status, head)
    time.sleep(0.2)
    assert (f'a DPoP proof cannot be for "api.example" on port {port2}: this request arrived on port {port}'
            in (two_ports.prefix / "logs" / "error.log").read_text())
    # The port the connection arrived on, named by Host or the request line, passes.
    for line, host in (("/api/x", f"api.example:{port}"), (f"http://api.example:{port}/api/x", "api.example"),
                       (f"  http://api.example:{port}/api/x", "other.example")):
        fresh = client.proof(url=f"http://api.example:{port}/api/x", token=client.bound)
        assert dpop_request(port, line, host, client.bound, fresh)[0] == 200, (line, host)


def test_item2_no_port_in_the_authority_is_the_schemes_default_not_the_local_port(two_ports, client):
    port = two_ports.port
    # A client that reaches the port names it; one that names none asked for port 80 (port
    # mapping: pin the public origins), and no proof is good for the request.
    for line, host in (("/api/x", "api.example"), ("/api/x", "api.example:"),
                       ("http://api.example/api/x", "api.example"), ("http://api.example:/api/x", f"api.example:{port}")):
        proof = client.proof(url="http://api.example/api/x", token=client.bound)
        status, head, _ = dpop_request(port, line, host, client.bound, proof)
        assert status == 401 and "another URL" in challenge_of(head), (line, host, status, head)
        proof = client.proof(url=f"http://api.example:{port}/api/x", token=client.bound)
        status, head, _ = dpop_request(port, line, host, client.bound, proof)
        assert status == 401 and "another URL" in challenge_of(head), (line, host, status, head)
    time.sleep(0.2)
    assert (f'a DPoP proof cannot be for "api.example" on port 80: this request arrived on port {port}'
            in (two_ports.prefix / "logs" / "error.log").read_text())


def test_item2_two_spaces_before_an_absolute_form_target_route_and_check_alike(nginx, client):
    port = nginx.port
    # nginx routes `GET  http://b.example:{port}/...` (two spaces) to b by the request line;
    # the proof URL is the request line's too, port included, not Host's.
    proof = client.proof(url=f"http://b.example:{port}/api/x", token=client.bound)
    assert dpop_request(port, f" http://b.example:{port}/api/x", "a.example:9999", client.bound, proof)[0] == 200
    proof = client.proof(url="http://b.example:9999/api/x", token=client.bound)
    status, head, _ = dpop_request(port, f" http://b.example:{port}/api/x", "a.example:9999", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head), (status, head)
    proof = client.proof(url="http://b.example:9999/api/x", token=client.bound)
    status, head, _ = dpop_request(port, " http://b.example/api/x", "a.example:9999", client.bound, proof)
    assert status == 401 and "another URL" in challenge_of(head), (status, head)


def test_item17_pinned_origins_take_the_clients_port_behind_port_mapping(two_ports, client):
    port, port2, public = two_ports.port, two_ports.port2, two_ports.public
    # The public port maps to nginx's: the pinned origin's proof passes, by Host or
    # by the request line (two spaces before it included).
    for line, host in (("/public/x", f"api.example:{public}"), (f"http://api.example:{public}/public/x", "api.example"),
                       (f"  http://api.example:{public}/public/x", "api.example")):
        proof = client.proof(url=f"http://api.example:{public}/public/x", token=client.bound)
        assert dpop_request(port, line, host, client.bound, proof)[0] == 200, (line, host)
    # A port that is not pinned (the local one included) names a URL no proof is good for.
    for other in (port, port2):
        proof = client.proof(url=f"http://api.example:{other}/public/x", token=client.bound)
        status, head, _ = dpop_request(port, "/public/x", f"api.example:{other}", client.bound, proof)
        assert status == 401 and "another URL" in challenge_of(head), (other, status, head)


def test_item2_a_unix_socket_has_no_port_a_proof_can_name_unless_origins_are_pinned(two_ports, client):
    def over_socket(target: str, host: str, proof: str) -> int:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(two_ports.prefix / "api.sock"))
            s.sendall((f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: DPoP {client.bound}\r\n"
                       f"DPoP: {proof}\r\nConnection: close\r\n\r\n").encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1])

    # No port to compare the client's with: no URL, whatever port Host names (none included).
    for host in ("api.example", "api.example:80", "api.example:8080"):
        proof = client.proof(url=f"http://{host}/api/x", token=client.bound)
        assert over_socket("/api/x", host, proof) == 401, host
    time.sleep(0.2)
    assert ('a DPoP proof cannot be for "api.example": this request arrived on a socket without a port'
            in (two_ports.prefix / "logs" / "error.log").read_text())
    # Pinned: the pinned origin's proof passes.
    proof = client.proof(url="http://api.example/public/x", token=client.bound)
    assert over_socket("/public/x", "api.example", proof) == 200
