"""Build glue that pyproject.toml cannot express.

- The wheel is tagged ``py3-none-<platform>``: one wheel for every Python 3 on the platform.
- The version is the Rust crate's (Cargo.toml): one number for the library, the C header, the
  wheel and ``jwtguard.__version__``.
- The Rust library is built by setuptools-rust as a plain shared library (no Python
  extension) and placed inside the package, where ``jwtguard._native`` loads it with ctypes.
  From the repository the crate is ``../../Cargo.toml``; an sdist carries its own copy under
  ``rust/`` (the crate alone: the workspace's other members and benches left out), so a wheel
  builds from the sdist with nothing else beside it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.sdist import sdist

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]
from setuptools_rust import Binding, RustExtension

HERE = Path(__file__).resolve().parent
BUNDLED = HERE / "rust"
REPOSITORY_CRATE = HERE.parent.parent
CRATE = BUNDLED if (BUNDLED / "Cargo.toml").exists() else REPOSITORY_CRATE
# What the library needs to build; nothing of the CLI, the Envoy module, tests or benches.
CRATE_FILES = ("Cargo.toml", "Cargo.lock", "build.rs", "LICENSE")
CRATE_DIRS = ("src",)
# Manifest tables that name files or members an sdist does not carry.
DROPPED_TABLES = ("workspace", "bench", "dev-dependencies")


def crate_version() -> str:
    manifest = (CRATE / "Cargo.toml").read_text()
    package = manifest.split("[package]", 1)[1]
    match = re.search(r'^version\s*=\s*"([^"]+)"', package, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no version in {CRATE / 'Cargo.toml'}")
    return match.group(1)


def library_manifest(text: str) -> str:
    """Cargo.toml without the tables that point outside the library crate."""
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\[\[?\s*([A-Za-z0-9_-]+)[^\]]*\]\]?\s*(#.*)?$", line)
        if header:
            dropping = header.group(1).split(".")[0] in DROPPED_TABLES
        if not dropping:
            kept.append(line)
    return "".join(kept)


class SdistWithCrate(sdist):
    """An sdist that carries the Rust crate it builds from."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        source = CRATE
        target = Path(base_dir) / "rust"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for name in CRATE_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
        (target / "Cargo.toml").write_text(library_manifest((source / "Cargo.toml").read_text()))
        for name in CRATE_DIRS:
            shutil.copytree(source / name, target / name)


class PlatformWheel(bdist_wheel):
    """A wheel for any Python 3 on this platform: the library is loaded with ctypes, so it
    depends on the platform (a Linux shared object), never on the interpreter's ABI."""

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    version=crate_version(),
    rust_extensions=[
        RustExtension(
            "jwtguard.libjwtguard",
            path=str(CRATE / "Cargo.toml"),
            binding=Binding.NoBinding,
            # From the repository: exactly the locked dependency set. From an sdist, the
            # workspace's lock file is trimmed by cargo to the library's part (the versions
            # stay those locked), which --locked would refuse.
            args=["--locked"] if CRATE is REPOSITORY_CRATE else [],
        )
    ],
    cmdclass={"sdist": SdistWithCrate, "bdist_wheel": PlatformWheel},
)
