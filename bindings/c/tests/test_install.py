"""`make install` into a temporary prefix, used the way a C or C++ project uses an installed
library: the versioned shared object and its links, exactly the `jwt_*` symbols exported, the
pkg-config file (the C ping server built out of tree from it, shared and static), the CMake
package (a project with `find_package(jwtguard 0.1 REQUIRED)` linking `jwtguard::jwtguard`
and `jwtguard::static`), the C++17 wrapper under g++ and clang++ with every warning an error,
all run against a real dev issuer; then `make uninstall` leaves no file behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from test_ping_server import EXPECTED, OTHER_SCHEMES, ROOT, VALGRIND, tamper, wait_up

from harness import AUDIENCE, DevIssuer, free_port, http

VERSION = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
MAJOR = VERSION.split(".")[0]
PING_SOURCE = ROOT / "bindings" / "c" / "examples" / "ping_server.c"
CPP_EXAMPLE = ROOT / "bindings" / "c" / "examples" / "cpp"
# What the shared library may need from the system: libc and friends, nothing else.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def run(args, **kwargs) -> str:
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def make(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return run(["make", "-s", "-C", str(ROOT), *args], env=env)


def needed(binary: Path) -> set[str]:
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run(["readelf", "-d", str(binary)])))


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.is_dir())


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("prefix")
    make("install", f"PREFIX={prefix}")
    return prefix


@pytest.fixture(scope="module")
def issuer():
    issuer = DevIssuer()
    yield issuer
    issuer.stop()


def pkg_config(prefix: Path, *args: str) -> str:
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    env.pop("PKG_CONFIG_LIBDIR", None)
    return run(["pkg-config", *args, "jwtguard"], env=env).strip()


def test_layout_soname_links_and_exports(prefix):
    lib = prefix / "lib"
    assert files_under(prefix) == sorted([
        "include/jwtguard.h", "include/jwtguard.hpp", "lib/cmake/jwtguard/jwtguardConfig.cmake",
        "lib/cmake/jwtguard/jwtguardConfigVersion.cmake", "lib/libjwtguard.a", "lib/libjwtguard.so",
        f"lib/libjwtguard.so.{MAJOR}", f"lib/libjwtguard.so.{VERSION}", "lib/pkgconfig/jwtguard.pc",
    ])
    assert os.readlink(lib / "libjwtguard.so") == f"libjwtguard.so.{MAJOR}"
    assert os.readlink(lib / f"libjwtguard.so.{MAJOR}") == f"libjwtguard.so.{VERSION}"
    real = lib / f"libjwtguard.so.{VERSION}"
    assert not real.is_symlink()
    dynamic = run(["readelf", "-d", str(real)])
    assert re.search(rf"\(SONAME\)\s+Library soname: \[libjwtguard\.so\.{MAJOR}\]", dynamic), dynamic
    assert needed(real) <= SYSTEM_LIBRARIES, needed(real)

    # Exactly the functions the header declares are exported: no Rust std, no aws-lc.
    exported = set(run(["nm", "-D", "--defined-only", "--format=just-symbols", str(real)]).split())
    declared = set(re.findall(r"\b(jwt_\w+)\(", (ROOT / "include" / "jwtguard.h").read_text()))
    assert exported == declared, (exported ^ declared)
    # The installed header is the repository's, byte for byte.
    assert (prefix / "include" / "jwtguard.h").read_bytes() == (ROOT / "include" / "jwtguard.h").read_bytes()


def test_pkg_config_file(prefix):
    assert pkg_config(prefix, "--modversion") == VERSION
    assert pkg_config(prefix, "--cflags") == f"-I{prefix / 'include'}"
    assert pkg_config(prefix, "--libs") == f"-L{prefix / 'lib'} -ljwtguard"
    static = pkg_config(prefix, "--static", "--libs").split()
    assert static[:2] == [f"-L{prefix / 'lib'}", "-ljwtguard"]
    assert {"-lpthread", "-ldl", "-lm", "-lgcc_s"} <= set(static[2:]), static


def ping_answers(binary: Path, issuer: DevIssuer, command_prefix: list[str] | None = None) -> None:
    """The ping server at `binary` answers every case of the C suite's table."""
    port = free_port()
    env = dict(os.environ, JWTGUARD_ISSUER=issuer.url, JWTGUARD_AUDIENCE=AUDIENCE, PORT=str(port))
    for key in ("AUTH0_DOMAIN", "API_IDENTIFIER", "JWTGUARD_JWKS_URI", "LD_LIBRARY_PATH"):
        env.pop(key, None)
    server = subprocess.Popen([*(command_prefix or []), str(binary)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base, server, str(binary))
        plain = issuer.token("openid")
        tokens = {
            "none": None, "plain": plain, "scoped": issuer.token("read:messages"),
            "expired": issuer.token("read:messages", expires_in=-300), "tampered": tamper(plain),
            **OTHER_SCHEMES, "garbage": "not-a-jwt",
        }
        for (route, kind), (status, code) in EXPECTED.items():
            headers = {}
            if kind in OTHER_SCHEMES:
                headers["Authorization"] = tokens[kind]
            elif tokens[kind] is not None:
                headers["Authorization"] = f"Bearer {tokens[kind]}"
            got_status, _, body = http("GET", base + route, headers=headers)
            assert got_status == status, (binary.name, route, kind, body)
            if code is None:
                assert body["message"].startswith("Hello from a "), (route, kind, body)
            else:
                assert body["code"] == code, (route, kind, body)
    finally:
        server.send_signal(signal.SIGTERM)
        _, report = server.communicate(timeout=60)
    assert server.returncode == 0, report


def test_ping_server_built_out_of_tree_with_pkg_config(prefix, issuer, tmp_path):
    # The example copied away from the repository: only the installed files can be found.
    source = tmp_path / "ping_server.c"
    shutil.copy(PING_SOURCE, source)
    libdir = pkg_config(prefix, "--variable=libdir")
    shared = tmp_path / "ping_shared"
    run(["sh", "-c", f'cc -std=c99 -Wall -Wextra -Werror -O1 {source} -o {shared} '
         f'$(pkg-config --cflags --libs jwtguard) -Wl,-rpath,{libdir} -lmicrohttpd -pthread'],
        env=dict(os.environ, PKG_CONFIG_PATH=f"{libdir}/pkgconfig"), cwd=tmp_path)
    assert f"libjwtguard.so.{MAJOR}" in needed(shared)
    resolved = run(["ldd", str(shared)])
    assert re.search(rf"libjwtguard\.so\.{MAJOR} => {re.escape(libdir)}/libjwtguard\.so\.{MAJOR}", resolved), resolved
    ping_answers(shared, issuer)

    # Static: the archive plus what `pkg-config --static` lists, nothing added by hand.
    static = tmp_path / "ping_static"
    run(["sh", "-c", f'cc -std=c99 -Wall -Wextra -Werror -O1 {source} -o {static} '
         f'$(pkg-config --cflags jwtguard) $(pkg-config --static --libs jwtguard | sed "s/-ljwtguard/-l:libjwtguard.a/") '
         f'-lmicrohttpd -pthread'],
        env=dict(os.environ, PKG_CONFIG_PATH=f"{libdir}/pkgconfig"), cwd=tmp_path)
    assert not any(name.startswith("libjwtguard") for name in needed(static)), needed(static)
    ping_answers(static, issuer)


def check_lines(binary: Path, issuer: DevIssuer, command_prefix: list[str] | None = None) -> None:
    """The C++ example's answers for each kind of header."""
    plain, scoped = issuer.token("openid"), issuer.token("read:messages")
    expired = issuer.token("read:messages", expires_in=-300)
    env = dict(os.environ, JWTGUARD_ISSUER=issuer.url, JWTGUARD_AUDIENCE=AUDIENCE)
    env.pop("JWTGUARD_JWKS_URI", None)
    out = run([*(command_prefix or []), str(binary), "read:messages", "-", f"Bearer {plain}", f"Bearer {scoped}",
               f"Bearer {expired}", f"Bearer {tamper(plain)}", "Basic dXNlcjpwYXNz", "Bearer a.b", "Bearer a b"],
              env=env)
    lines = out.splitlines()
    assert lines[0] == "401 authorization_header_missing token_missing"
    assert re.fullmatch(rf"200 sub=\S+ scope=no exp=\d{{10}} aud={re.escape(AUDIENCE)}", lines[1]), lines[1]
    assert re.fullmatch(rf"200 sub=\S+ scope=yes exp=\d{{10}} aud={re.escape(AUDIENCE)}", lines[2]), lines[2]
    assert lines[3:8] == [
        "401 token_expired token_expired",
        "401 invalid_token signature_invalid",
        "401 invalid_header authorization_scheme_unsupported",
        "401 invalid_header token_malformed",
        "400 invalid_header authorization_header_malformed",
    ]
    assert lines[8] == f"kept 2 claims {VERSION}"


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_cpp_wrapper_compiles_warning_free_and_verifies(prefix, issuer, tmp_path, compiler):
    libdir = pkg_config(prefix, "--variable=libdir")
    binary = tmp_path / "check"
    run(["sh", "-c", f'{compiler} -std=c++17 -Wall -Wextra -Wpedantic -Werror -Wconversion -Wshadow -O1 -g '
         f'{CPP_EXAMPLE / "check.cpp"} -o {binary} $(pkg-config --cflags --libs jwtguard) -Wl,-rpath,{libdir}'],
        env=dict(os.environ, PKG_CONFIG_PATH=f"{libdir}/pkgconfig"))
    check_lines(binary, issuer)
    if compiler == "g++":
        # RAII: every handle the wrapper makes is freed (moves, early returns, exceptions).
        check_lines(binary, issuer, VALGRIND)


def test_cmake_package_shared_and_static_targets(prefix, issuer, tmp_path):
    build = tmp_path / "build"
    run(["cmake", "-S", str(CPP_EXAMPLE), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}", "-DCMAKE_BUILD_TYPE=Release"])
    run(["cmake", "--build", str(build)])
    shared, static = build / "check_shared", build / "check_static"
    assert f"libjwtguard.so.{MAJOR}" in needed(shared)
    assert not any(name.startswith("libjwtguard") for name in needed(static)), needed(static)
    check_lines(shared, issuer)
    check_lines(static, issuer)


@pytest.mark.parametrize("asked,found", [
    ("0.1", True), ("0.0", True), (VERSION + " EXACT", True), ("0.1...0.3", True), ("0.0...<0.1", False),
    ("0.2", False), ("1", False), ("0.2...0.3", False),
])
def test_cmake_version_check(prefix, tmp_path, asked, found):
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.19)\nproject(probe LANGUAGES C)\n"
        f"find_package(jwtguard {asked})\n"
        'message(STATUS "jwtguard_FOUND=${jwtguard_FOUND} VERSION=${jwtguard_VERSION}")\n'
    )
    out = run(["cmake", "-S", str(project), "-B", str(tmp_path / "build"), f"-DCMAKE_PREFIX_PATH={prefix}"])
    if found:
        assert f"jwtguard_FOUND=1 VERSION={VERSION}" in out, out
    else:
        assert "jwtguard_FOUND=0" in out, out


def test_destdir_staging_and_uninstall(tmp_path):
    stage = tmp_path / "stage"
    make("install", f"DESTDIR={stage}", "PREFIX=/usr")
    pc = (stage / "usr" / "lib" / "pkgconfig" / "jwtguard.pc").read_text()
    # Paths are the final ones, never the staging directory's.
    assert "prefix=/usr\n" in pc and "libdir=${prefix}/lib\n" in pc and str(stage) not in pc
    cmake = (stage / "usr" / "lib" / "cmake" / "jwtguard" / "jwtguardConfig.cmake").read_text()
    assert '"/usr/lib"' in cmake and str(stage) not in cmake
    assert len(files_under(stage)) == 9
    make("uninstall", f"DESTDIR={stage}", "PREFIX=/usr")
    assert files_under(stage) == []


def test_uninstall_removes_every_installed_file(tmp_path):
    prefix = tmp_path / "prefix"
    make("install", f"PREFIX={prefix}")
    (prefix / "lib" / "unrelated.so").write_text("not ours")
    make("uninstall", f"PREFIX={prefix}")
    assert files_under(prefix) == ["lib/unrelated.so"]
