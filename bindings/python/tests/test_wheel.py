"""`pip install ./bindings/python` works: a wheel is built (setuptools-rust builds the Rust
library and puts it inside the package), installed into a fresh venv, and `import jwtguard`
works from another directory without JWTGUARD_LIBRARY."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv

from conftest import AUDIENCE, MINTED_ISSUER, ROOT


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_wheel_installs_into_a_fresh_venv(tmp_path, minter):
    wheels = tmp_path / "wheels"
    # Neither the library override nor the source tree may leak into the installed package.
    env = {k: v for k, v in os.environ.items() if k not in ("JWTGUARD_LIBRARY", "PYTHONPATH")}
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(wheels),
         str(ROOT / "bindings" / "python")],
        env=env,
    )
    (wheel,) = wheels.glob("jwtguard-*.whl")
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)], env=env)

    script = (
        "import json, sys, jwtguard\n"
        "from pathlib import Path\n"
        "assert Path(jwtguard.__file__).parent.joinpath('py.typed').exists()\n"
        "v = jwtguard.Verifier(sys.argv[1], sys.argv[2], jwks=json.loads(sys.argv[3]))\n"
        "print(jwtguard.version(), v.verify(sys.argv[4])['sub'], jwtguard.has_scope(v.verify(sys.argv[4]), 'read:messages'))\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = run(
        [str(python), "-c", script, MINTED_ISSUER, AUDIENCE, json.dumps(minter.jwks), minter.token()],
        cwd=elsewhere,
        env=env,
    )
    assert out.split() == ["0.1.0", "client-1@clients", "True"]
