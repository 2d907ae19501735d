#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on Debian 12 and is quiet when all is there:
# Debian packages (as root) and a Python venv at .venv with bindings/python/requirements-dev.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need+=(gcc)
have c++ || need+=(g++)
have make || need+=(make)
have valgrind || need+=(valgrind)
have openssl || need+=(openssl)
have curl || need+=(curl)
have python3 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
have nginx || need+=(nginx)
[ -x /usr/share/nginx/src/configure ] || need+=(nginx-dev)
[ -f /usr/include/microhttpd.h ] || need+=(libmicrohttpd-dev)
have wrk || need+=(wrk)
have caddy || need+=(caddy)
have cmake || need+=(cmake)
have clang++ || need+=(clang)
have pkg-config || need+=(pkg-config)
have readelf || need+=(binutils)
have dpkg-buildpackage || need+=(dpkg-dev)
have dh || need+=(debhelper)
# dpkg-buildpackage checks the Build-Essential set as well as the Build-Depends (make deb).
dpkg -s build-essential >/dev/null 2>&1 || need+=(build-essential)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-env: missing packages: ${need[*]} (run as root, or install them)" >&2
    exit 1
  fi
  echo "setup-env: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
have cargo || { echo "setup-env: a Rust toolchain (cargo) is required: https://rustup.rs" >&2; exit 1; }

requirements=bindings/python/requirements-dev.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-env: preparing .venv"
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$requirements"
  echo "$want" > "$stamp"
fi
