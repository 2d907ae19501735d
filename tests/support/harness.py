"""Test harness shared by the Python and nginx suites: paths to the built artifacts, a real
`jwtguard dev-issuer` process, and plain HTTP calls over loopback (no proxies)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
os.environ.setdefault("JWTGUARD_LIBRARY", str(TARGET / "libjwtguard.so"))
JWTGUARD_BIN = os.environ.get("JWTGUARD_BIN", str(TARGET / "jwtguard"))
sys.path.insert(0, str(ROOT / "bindings" / "python" / "src"))

AUDIENCE = "https://api.example"
MINTED_ISSUER = "https://tenant.example/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, parsed JSON or text) of one request; never raises on HTTP errors."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, error.headers, error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw.decode("utf-8", "replace")


def wait_ok(url: str, token: str | None = None, what: str = "a server", seconds: float = 30) -> None:
    """Polls url (with the token as a Bearer token, if any) until it answers 200."""
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        try:
            if http("GET", url, headers=headers)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer 200 at {url}")
        time.sleep(0.1)


class DevIssuer:
    """`jwtguard dev-issuer --admin` as a real process."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [JWTGUARD_BIN, "dev-issuer", "--admin", "--audience", AUDIENCE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url
        self.jwks_uri = self.url + ".well-known/jwks.json"

    def token(self, scope: str = "read:messages", expires_in: int = 3600) -> str:
        body = json.dumps({"audience": AUDIENCE, "scope": scope, "expires_in": expires_in}).encode()
        status, _, answer = http("POST", self.url + "oauth/token", body, {"Content-Type": "application/json"})
        assert status == 200, answer
        return answer["access_token"]

    def rotate(self, retire: bool = False) -> str:
        body = json.dumps({"retire": retire}).encode()
        return http("POST", self.url + "admin/rotate", body, {"Content-Type": "application/json"})[2]["kid"]

    def fault(self, **fault) -> None:
        body = json.dumps(fault).encode()
        status, _, answer = http("POST", self.url + "admin/fault", body, {"Content-Type": "application/json"})
        assert status == 200, answer

    def jwks_requests(self) -> int:
        return http("GET", self.url + "admin/stats")[2]["jwks_requests"]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()




def raw_request(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no client library would send these: repeated or folded
    headers, raw control bytes) and read the whole answer: (status, {lowercase name: [values]},
    body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


class RecordingUpstream:
    """A loopback upstream that records the headers of each request it gets (lowercase names)
    and answers 200 with {"upstream": PATH}; `extra_headers(path)` may add response headers."""

    def __init__(self, extra_headers=None):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.seen: list[dict] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = json.dumps({"upstream": self.path}).encode()
                self.send_response(200)
                for name, value in (extra_headers(self.path) if extra_headers else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


FLASK_SERVER = ROOT / "bindings" / "python" / "examples" / "flask_api" / "server.py"
PING_SERVER = Path(os.environ.get("JWTGUARD_PING_SERVER", TARGET / "ping_server"))


class PingServers:
    """The Flask example and the C ping server against `issuer_url`, on loopback: the hosts
    every other host must answer like. `ports` maps "Flask" and "C" to their ports."""

    def __init__(self, issuer_url: str):
        env = dict(os.environ, JWTGUARD_ISSUER=issuer_url, JWTGUARD_AUDIENCE=AUDIENCE)
        for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI"):
            env.pop(key, None)
        self.ports = {"Flask": _free(), "C": _free()}
        commands = {"Flask": [sys.executable, str(FLASK_SERVER)], "C": [str(PING_SERVER)]}
        # The C server's DPoP origins pinned: the host cases send `Host: api` to every host on
        # whatever port it listens on (port 80 mapped to its own), and other tests address it
        # as 127.0.0.1:PORT. Unpinned, a proof's URL must name the port it listens on.
        pins = {"Flask": {}, "C": {"JWTGUARD_DPOP_ORIGINS": f"http://api http://127.0.0.1:{self.ports['C']}"}}
        self.processes = [
            subprocess.Popen(commands[name], env=dict(env, PORT=str(port), **pins[name]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, port in self.ports.items()
        ]
        for name, port in self.ports.items():
            wait_ok(f"http://127.0.0.1:{port}/api/public", what=f"the {name} ping server")

    def close(self) -> None:
        # SIGTERM: the C server stops cleanly, so a sanitizer build gets to its leak check.
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _free() -> int:
    return free_port()


def request_bytes(path: bytes, *header_lines: bytes) -> bytes:
    """A GET as raw bytes, with these header lines as they are."""
    return (b"GET " + path + b" HTTP/1.1\r\nHost: api\r\n" + b"".join(h + b"\r\n" for h in header_lines)
            + b"Connection: close\r\n\r\n")


def host_cases(token: bytes, plain: bytes, bound: tuple | None = None) -> dict[str, tuple[bytes, int]]:
    """Requests every host must answer alike (name: (raw request, status)), malformed ones
    included; `token` has read:messages, `plain` does not; `bound` is (a dpop.DpopClient, a
    token bound to its key with read:messages, one without): DPoP calls, fresh proofs on every
    call (each proof is good once per host: the replayed case sends the valid case's proof
    again)."""
    get = request_bytes
    cases = {
        "two Authorization lines": (get(b"/api/private", b"Authorization: Bearer " + token, b"Authorization: Bearer x.y.z"), 400),
        "the same token twice": (get(b"/api/private", b"Authorization: Bearer " + token, b"Authorization: Bearer " + token), 400),
        "a 0xff byte": (get(b"/api/private", b"Authorization: Bearer " + token + b"\xff"), 400),
        "UTF-8 in the token": (get(b"/api/private", b"Authorization: Bearer " + token + "\u00e9".encode()), 400),
        "Basic": (get(b"/api/private", b"Authorization: Basic dXNlcjpwYXNz"), 401),
        "an empty header": (get(b"/api/private", b"Authorization: "), 401),
        "no header": (get(b"/api/private"), 401),
        "garbage": (get(b"/api/private", b"Authorization: Bearer not-a-jwt"), 401),
        "valid": (get(b"/api/private", b"Authorization: Bearer " + token), 200),
        "two spaces, lower case": (get(b"/api/private", b"Authorization: bearer  " + token), 200),
        "scoped": (get(b"/api/private-scoped", b"Authorization: Bearer " + token), 200),
        "scope missing": (get(b"/api/private-scoped", b"Authorization: Bearer " + plain), 403),
        "public": (get(b"/api/public"), 200),
        "no such route": (get(b"/nope"), 404),
    }
    if bound is not None:
        from dpop import SCOPED_URL  # noqa: PLC0415 (tests/support, beside this file)

        client, bound_token, bound_plain = bound
        text = bound_token.decode()
        dpop_scheme = b"Authorization: DPoP " + bound_token
        valid = client.proof(token=text).encode()
        cases.update({
            "DPoP valid": (get(b"/api/private", dpop_scheme, b"DPoP: " + valid), 200),
            "DPoP replayed": (get(b"/api/private", dpop_scheme, b"DPoP: " + valid), 401),
            "DPoP bound token as Bearer": (get(b"/api/private", b"Authorization: Bearer " + bound_token), 401),
            "DPoP scoped": (get(b"/api/private-scoped", dpop_scheme,
                                b"DPoP: " + client.proof(url=SCOPED_URL, token=text).encode()), 200),
            "DPoP scope missing": (get(b"/api/private-scoped", b"Authorization: DPoP " + bound_plain,
                                       b"DPoP: " + client.proof(url=SCOPED_URL, token=bound_plain.decode()).encode()),
                                   403),
            "DPoP query ignored": (get(b"/api/private?page=2", dpop_scheme,
                                       b"DPoP: " + client.proof(token=text).encode()), 200),
            "DPoP other path": (get(b"/api/private", dpop_scheme,
                                    b"DPoP: " + client.proof(url="http://api/api/public", token=text).encode()), 401),
            "DPoP other host": (get(b"/api/private", dpop_scheme,
                                    b"DPoP: " + client.proof(url="http://evil/api/private", token=text).encode()), 401),
            "DPoP other method": (get(b"/api/private", dpop_scheme,
                                      b"DPoP: " + client.proof(method="POST", token=text).encode()), 401),
            "DPoP no proof": (get(b"/api/private", dpop_scheme), 401),
            "DPoP two proofs": (get(b"/api/private", dpop_scheme, b"DPoP: " + client.proof(token=text).encode(),
                                    b"DPoP: " + client.proof(token=text).encode()), 401),
            "DPoP proof for another token": (get(b"/api/private", dpop_scheme,
                                                 b"DPoP: " + client.proof(token=plain.decode()).encode()), 401),
            "DPoP unbound token": (get(b"/api/private", b"Authorization: DPoP " + token,
                                       b"DPoP: " + client.proof(token=token.decode()).encode()), 401),
        })
    return cases


MALFORMED = {"invalid_header", "Authorization header must be 'Bearer <token>'"}


def assert_hosts_agree(ports: dict[str, int], cases: dict[str, tuple[bytes, int]]) -> None:
    """Every host answers each case with the same status, body bytes, Content-Type,
    WWW-Authenticate and Retry-After as the first host."""
    for name, (request, status) in cases.items():
        answers = {host: raw_request(port, request) for host, port in ports.items()}
        for host, (got, headers, body) in answers.items():
            assert got == status, (name, host, got, body)
            assert headers.get("content-type") == ["application/json"], (name, host, headers)
        first = next(iter(answers.values()))
        for host, (got, headers, body) in answers.items():
            assert body == first[2], (name, host, body, first[2])
            for header in ("www-authenticate", "retry-after"):
                assert headers.get(header) == first[1].get(header), (name, host, header, headers)
        if status == 400:
            assert set(json.loads(first[2]).values()) == MALFORMED, (name, first[2])
            assert len(first[1]["www-authenticate"]) == 1
