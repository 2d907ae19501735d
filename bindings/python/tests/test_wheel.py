"""Packaging: `python -m build bindings/python` makes an sdist that carries the Rust crate and
a platform wheel built from that sdist alone; `auditwheel` repairs the wheel to a manylinux
tag; a fresh venv with no Rust toolchain on PATH installs it and verifies tokens from another
directory; one version everywhere (the crate's). `pip install ./bindings/python` from the
source tree keeps working."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import AUDIENCE, MINTED_ISSUER, ROOT

VERSION = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
PACKAGE = ROOT / "bindings" / "python"
BIN = Path(sys.executable).parent


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def clean_env(**extra: str) -> dict:
    # Neither the library override nor the source tree may leak into the installed package.
    env = {k: v for k, v in os.environ.items() if k not in ("JWTGUARD_LIBRARY", "PYTHONPATH")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel built from the unpacked sdist (build's default).
    # The sdist's crate is a package of its own: its own target directory (kept between runs),
    # never the repository's, whose libjwtguard.so the other suites load.
    env = clean_env(CARGO_TARGET_DIR=str(ROOT / "target" / "python-sdist"))
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(PACKAGE)], env=env)
    return out


def smoke(python: Path, tmp_path: Path, minter, env: dict) -> list[str]:
    script = (
        "import importlib.metadata, json, sys, jwtguard\n"
        "from pathlib import Path\n"
        "assert Path(jwtguard.__file__).parent.joinpath('py.typed').exists()\n"
        "v = jwtguard.Verifier(sys.argv[1], sys.argv[2], jwks=json.loads(sys.argv[3]))\n"
        "claims = v.verify(sys.argv[4])\n"
        "print(jwtguard.__version__, jwtguard.library_version(), importlib.metadata.version('jwtguard'),\n"
        "      claims['sub'], jwtguard.has_scope(claims, 'read:messages'), Path(jwtguard.__file__).parent)\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    return run([str(python), "-c", script, MINTED_ISSUER, AUDIENCE, json.dumps(minter.jwks), minter.token()],
               cwd=elsewhere, env=env).split()


def test_sdist_carries_the_crate_alone(dist):
    (sdist,) = dist.glob("jwtguard-*.tar.gz")
    assert sdist.name == f"jwtguard-{VERSION}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        manifest = archive.extractfile(f"jwtguard-{VERSION}/rust/Cargo.toml").read().decode()
    assert {"setup.py", "pyproject.toml", "rust/Cargo.toml", "rust/Cargo.lock", "rust/build.rs", "rust/src/lib.rs",
            "src/jwtguard/__init__.py", "src/jwtguard/py.typed"} <= names
    assert not any(name.startswith(("rust/cli", "rust/bindings", "rust/tests", "rust/fuzz")) for name in names)
    assert "[workspace]" not in manifest and "[[bench]]" not in manifest and f'version = "{VERSION}"' in manifest


def test_wheel_is_platform_tagged_and_repairs_to_manylinux(dist, tmp_path, minter):
    (wheel,) = dist.glob("jwtguard-*.whl")
    assert re.fullmatch(rf"jwtguard-{re.escape(VERSION)}-py3-none-linux_\w+\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        wheel_meta = archive.read(f"jwtguard-{VERSION}.dist-info/WHEEL").decode()
    assert "Root-Is-Purelib: false" in wheel_meta
    assert any(re.fullmatch(r"jwtguard/libjwtguard[^/]*\.so", n) for n in names), names
    assert {"jwtguard/py.typed", "jwtguard/fastapi.py", "jwtguard/django.py", "jwtguard/flask.py"} <= set(names)

    repaired = tmp_path / "repaired"
    run([str(BIN / "auditwheel"), "repair", "--wheel-dir", str(repaired), str(wheel)],
        env=dict(clean_env(), PATH=f"{BIN}:{os.environ['PATH']}"))
    (manylinux,) = repaired.glob("*.whl")
    assert re.fullmatch(rf"jwtguard-{re.escape(VERSION)}-py3-none-manylinux_\d+_\d+_\w+\.whl", manylinux.name), manylinux.name
    shown = run([str(BIN / "auditwheel"), "show", str(manylinux)])
    assert "manylinux_" in shown, shown

    # A fresh venv, no cargo or rustc on PATH: the wheel needs no toolchain.
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    # PATH holds the venv alone: no cargo or rustc whatever the machine has installed.
    no_rust = clean_env(PATH=str(target / "bin"))
    assert subprocess.run(["/bin/sh", "-c", "command -v cargo || command -v rustc"], env=no_rust).returncode != 0
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(manylinux)], env=no_rust)
    out = smoke(python, tmp_path, minter, no_rust)
    assert out[:5] == [VERSION, VERSION, VERSION, "client-1@clients", "True"], out
    assert out[5].startswith(str(target)), out


def test_pip_install_from_the_source_tree(tmp_path, minter):
    """What `pip install ./bindings/python` does: a wheel built from the source tree (on the
    workspace's own crate), installed."""
    wheels = tmp_path / "wheels"
    env = clean_env()
    run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(wheels),
         str(PACKAGE)], env=env)
    (wheel,) = wheels.glob("jwtguard-*.whl")
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)], env=env)
    out = smoke(python, tmp_path, minter, env)
    assert out[:5] == [VERSION, VERSION, VERSION, "client-1@clients", "True"], out
    assert out[5].startswith(str(target)), out


def test_package_is_typed_strictly():
    """`mypy --strict` on the package, every integration included (Flask, FastAPI, Django)."""
    out = run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(PACKAGE / "src" / "jwtguard")])
    assert "Success: no issues found" in out, out
