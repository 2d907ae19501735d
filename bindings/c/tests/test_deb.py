"""`make deb`, then the packages used the way Debian users use them, on this machine: `dpkg -i`
the library, its -dev package and the nginx module; Debian's nginx loads the module from its
packaged path through the modules-enabled link the package made and verifies a request
against a real dev issuer; a C++ program builds against the system install with pkg-config
and CMake alone; `dpkg -P` then leaves none of the packages' files behind.

It installs packages system-wide, so it refuses to run when one of them is already installed
(it would remove what the machine's owner installed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_install import CPP_EXAMPLE, MAJOR, ROOT, VERSION, check_lines, needed, run

from harness import AUDIENCE, DevIssuer, free_port, http

PACKAGES = ("libjwtguard0", "libjwtguard-dev", "libnginx-mod-http-jwtguard")
MULTIARCH = subprocess.run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True).stdout.strip()
ENABLED = Path("/etc/nginx/modules-enabled/50-mod-http-jwtguard.conf")


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and "installed" in result.stdout.split()[-1:]


def contents(deb: Path) -> list[str]:
    """The paths a package installs (files and links; directories left out)."""
    listing = run(["dpkg-deb", "-c", str(deb)])
    paths = []
    for line in listing.splitlines():
        if line.startswith("d"):
            continue
        path = line.split(None, 5)[5].split(" -> ")[0]
        paths.append(path.lstrip("."))
    return paths


def field(deb: Path, name: str) -> str:
    return run(["dpkg-deb", "-f", str(deb), name]).strip()


@pytest.fixture(scope="module")
def debs() -> dict[str, Path]:
    present = [p for p in PACKAGES if installed(p)]
    if present:
        pytest.fail(f"{', '.join(present)} already installed here: the test installs and removes them "
                    f"(dpkg -r {' '.join(present)} first)")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    run(["make", "-s", "-C", str(ROOT), "deb"], env=env)
    found = {}
    for package in PACKAGES:
        (deb,) = (ROOT / "target" / "deb").glob(f"{package}_{VERSION}_*.deb")
        found[package] = deb
    return found


def test_package_contents_and_dependencies(debs):
    lib = f"/usr/lib/{MULTIARCH}"
    files = [p for p in contents(debs["libjwtguard0"]) if not p.startswith("/usr/share/doc/")]
    assert sorted(files) == sorted([f"{lib}/libjwtguard.so.{VERSION}", f"{lib}/libjwtguard.so.{MAJOR}"]), files
    dev = set(contents(debs["libjwtguard-dev"]))
    assert {"/usr/include/jwtguard.h", "/usr/include/jwtguard.hpp", f"{lib}/libjwtguard.so", f"{lib}/libjwtguard.a",
            f"{lib}/pkgconfig/jwtguard.pc", f"{lib}/cmake/jwtguard/jwtguardConfig.cmake",
            f"{lib}/cmake/jwtguard/jwtguardConfigVersion.cmake"} <= dev, dev
    module = set(contents(debs["libnginx-mod-http-jwtguard"]))
    assert {"/usr/lib/nginx/modules/ngx_http_jwtguard_module.so",
            "/usr/share/nginx/modules-available/mod-http-jwtguard.conf"} <= module, module

    # The module depends on the exact nginx ABI it was built against (Debian's own rule).
    abi = re.search(r"^nginx:abi=(\S+)", Path("/usr/share/nginx/src/debian/libnginx-mod.abisubstvars").read_text(),
                    re.M).group(1)
    assert abi in field(debs["libnginx-mod-http-jwtguard"], "Depends")
    assert f"libjwtguard0 (= {VERSION})" in field(debs["libjwtguard-dev"], "Depends")
    assert "libc6" in field(debs["libjwtguard0"], "Depends")
    # shlibs: programs built against the -dev package depend on libjwtguard0.
    control = run(["sh", "-c", f"dpkg-deb --ctrl-tarfile {debs['libjwtguard0']} | tar -xOf - ./shlibs"])
    assert control.split()[:2] == ["libjwtguard", MAJOR], control


def nginx_conf(tmp: Path, port: int, issuer: str) -> Path:
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
include /etc/nginx/modules-enabled/*.conf;
error_log {tmp}/error.log notice;
pid {tmp}/nginx.pid;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    jwtguard_issuer {issuer};
    jwtguard_audience {AUDIENCE};
    jwtguard_snapshot off;
    server {{
        listen 127.0.0.1:{port};
        location /api/private {{ jwtguard on; empty_gif; }}
        location /api/private-scoped {{ jwtguard on; jwtguard_require_scope read:messages; empty_gif; }}
    }}
}}
""")
    return conf


def test_install_use_and_remove(debs, tmp_path):
    issuer = DevIssuer()
    nginx = None
    try:
        run(["dpkg", "-i", *(str(debs[p]) for p in PACKAGES)])
        assert all(installed(p) for p in PACKAGES)
        # The package enabled the module as Debian's own module packages do.
        assert ENABLED.is_symlink() and os.readlink(ENABLED) == "/usr/share/nginx/modules-available/mod-http-jwtguard.conf"
        snippet = Path(os.readlink(ENABLED)).read_text()
        assert "load_module modules/ngx_http_jwtguard_module.so;" in snippet, snippet

        port = free_port()
        conf = nginx_conf(tmp_path, port, issuer.url)
        run(["nginx", "-t", "-c", str(conf)])
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                status = http("GET", base + "/api/private")[0]
                break
            except OSError:
                assert nginx.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        assert status == 401
        plain, scoped = issuer.token("openid"), issuer.token("read:messages")
        assert http("GET", base + "/api/private", headers={"Authorization": f"Bearer {plain}"})[0] == 200
        status, headers, _ = http("GET", base + "/api/private-scoped", headers={"Authorization": f"Bearer {plain}"})
        assert status == 403 and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
        assert http("GET", base + "/api/private-scoped", headers={"Authorization": f"Bearer {scoped}"})[0] == 200
        nginx.send_signal(signal.SIGQUIT)
        nginx.communicate(timeout=20)
        nginx = None

        # The -dev package alone: pkg-config and CMake find the system install, nothing pointed.
        assert run(["pkg-config", "--modversion", "jwtguard"]).strip() == VERSION
        binary = tmp_path / "check"
        run(["sh", "-c", f"c++ -std=c++17 -Wall -Wextra -Werror {CPP_EXAMPLE / 'check.cpp'} -o {binary} "
                         "$(pkg-config --cflags --libs jwtguard)"])
        assert f"libjwtguard.so.{MAJOR}" in needed(binary)
        check_lines(binary, issuer)
        build = tmp_path / "cmake"
        run(["cmake", "-S", str(CPP_EXAMPLE), "-B", str(build)])
        run(["cmake", "--build", str(build)])
        check_lines(build / "check_static", issuer)
    finally:
        if nginx is not None:
            nginx.kill()
            nginx.communicate()
        issuer.stop()
        # Purged, as an owner removes them for good (plain -r keeps the maintainer scripts'
        # state: the enabled link renamed to .removed, to restore it on a reinstall).
        subprocess.run(["dpkg", "-P", *PACKAGES], capture_output=True)

    assert not any(installed(p) for p in PACKAGES)
    left = [path for p in PACKAGES for path in contents(debs[p]) if os.path.lexists(path)]
    assert left == [], left
    assert not os.path.lexists(ENABLED)
    assert not os.path.lexists(f"{ENABLED}.removed")
    status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", *PACKAGES], capture_output=True, text=True)
    assert "rc" not in status.stdout, status.stdout  # nothing left in the config-files state
