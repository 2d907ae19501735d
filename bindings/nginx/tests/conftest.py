"""Fixtures for the nginx suite: Debian's nginx with the built module, started on loopback
against a real `jwtguard dev-issuer`."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from harness import AUDIENCE, DevIssuer, free_port, http  # noqa: E402,F401

MODULE = Path(os.environ.get("JWTGUARD_NGINX_MODULE", ROOT / "target" / "release" / "ngx_http_jwtguard_module.so"))
EXAMPLES = ROOT / "bindings" / "nginx" / "examples"

# `make asan`: the module is built with -fsanitize=address,undefined and Debian's nginx runs
# with the ASan runtime preloaded (every nginx command: `-t` and `-s reload` load the module
# too). Reports go to files in JWTGUARD_NGINX_SANITIZER_LOGS; any file there fails the session.
SANITIZER_LOGS = os.environ.get("JWTGUARD_NGINX_SANITIZER_LOGS")
ASAN_RUNTIME: str | None = None
if SANITIZER_LOGS:
    ASAN_RUNTIME = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                                  check=True).stdout.strip()
    Path(SANITIZER_LOGS).mkdir(parents=True, exist_ok=True)
    os.chmod(SANITIZER_LOGS, 0o777)  # the workers run as nobody
    # Every child reports there (the ASan ping server of the host comparisons too); only nginx
    # needs the runtime preloaded.
    os.environ.update(
        ASAN_OPTIONS=f"log_path={SANITIZER_LOGS}/asan:detect_leaks=1",
        LSAN_OPTIONS=f"suppressions={Path(__file__).parent / 'lsan.supp'}:print_suppressions=0",
        UBSAN_OPTIONS=f"log_path={SANITIZER_LOGS}/ubsan:print_stacktrace=1",
    )


def nginx_env() -> dict | None:
    """The environment for an nginx process: the current one (None: inherited), with the ASan
    runtime preloaded under the sanitizers."""
    return dict(os.environ, LD_PRELOAD=ASAN_RUNTIME) if ASAN_RUNTIME else None


def run_nginx(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """An nginx command (`-t`, `-s reload`) in the suite's environment."""
    return subprocess.run(["nginx", *args], env=nginx_env(), **kwargs)


def pytest_sessionfinish(session, exitstatus):
    if SANITIZER_LOGS:
        reports = sorted(Path(SANITIZER_LOGS).iterdir())
        for report in reports:
            sys.stderr.write(f"\n=== {report.name}\n{report.read_text(errors='replace')}")
        if reports:
            session.exitstatus = 1
            sys.stderr.write(f"\nsanitizer reports: {len(reports)} in {SANITIZER_LOGS}\n")
        else:
            sys.stderr.write(f"\nsanitizers (address, undefined, leaks): 0 reports in {SANITIZER_LOGS}\n")


class Nginx:
    """nginx -p PREFIX -c nginx.conf, in the foreground, stopped on close()."""

    def __init__(self, prefix: Path, config: str, port: int, own_snapshot: bool = True):
        self.prefix = prefix
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        (prefix / "modules").mkdir(parents=True, exist_ok=True)
        target = prefix / "modules" / "ngx_http_jwtguard_module.so"
        if not target.exists():
            target.symlink_to(MODULE)
        (prefix / "logs").mkdir(exist_ok=True)
        if not (prefix / "html").exists():
            # Copied, not linked: the workers (nobody) may not enter the checkout.
            shutil.copytree(EXAMPLES / "html", prefix / "html")
            for path in [prefix / "html", *(prefix / "html").rglob("*")]:
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(prefix, 0o777)
        if own_snapshot and not re.search(r"^\s*jwtguard_snapshot\s", config, re.M) and "http {" in config:
            # Each test keeps its snapshot in its own prefix, not in the machine-wide default
            # (tests that exercise the default pass own_snapshot=False).
            config = config.replace("http {", "http {\n    jwtguard_snapshot jwks-snapshot.json;", 1)
        (prefix / "nginx.conf").write_text(config)
        self.log = open(prefix / "logs" / "stderr.log", "w")
        self.process = subprocess.Popen(
            ["nginx", "-p", str(prefix), "-c", "nginx.conf"],
            env=nginx_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                http("GET", self.base + "/nginx-up")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start:\n" + (prefix / "logs" / "stderr.log").read_text())
                time.sleep(0.05)
        if SANITIZER_LOGS:
            maps = Path(f"/proc/{self.process.pid}/maps").read_text()
            assert "libasan" in maps and str(MODULE.resolve()) in maps, "nginx runs without the ASan module"

    def get(self, path: str, token: str | None = None, headers: dict | None = None):
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return http("GET", self.base + path, headers=all_headers)

    def workers(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def reload(self) -> None:
        run_nginx("-p", str(self.prefix), "-c", "nginx.conf", "-s", "reload", check=True)

    def error_log(self) -> str:
        return (self.prefix / "logs" / "stderr.log").read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                # Killed, nginx writes no leak report: under the sanitizers that is a failure.
                assert not SANITIZER_LOGS, "nginx did not stop on SIGQUIT within 10 s"
        self.log.close()


def example_config(issuer_url: str, port: int) -> str:
    """The shipped example, pointed at this test's issuer and port."""
    text = (EXAMPLES / "nginx.conf").read_text()
    return text.replace("http://127.0.0.1:8080/", issuer_url).replace("127.0.0.1:3020", f"127.0.0.1:{port}")


def fresh_prefix(name: str) -> Path:
    """A fresh nginx prefix outside the checkout: nginx workers run as nobody and cannot enter
    a checkout in a private directory (root's home is mode 700)."""
    path = Path(tempfile.mkdtemp(prefix=f"jwtguard-nginx-{name[:40]}-"))
    os.chmod(path, 0o777)
    return path


@pytest.fixture()
def prefix(request) -> Path:
    path = fresh_prefix(request.node.name)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def issuer():
    dev = DevIssuer()
    yield dev
    dev.stop()
