#!/usr/bin/env bash
# What `make bench-report` needs beyond scripts/setup-env.sh: libjwt (Debian's libjwt-dev, the
# C comparison), and authlib, gunicorn and matplotlib in .venv. Quiet when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-env.sh
if [ ! -f /usr/include/jwt.h ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-bench: libjwt-dev is missing (run as root, or install it)" >&2
    exit 1
  fi
  echo "setup-bench: installing libjwt-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libjwt-dev >/dev/null
fi
requirements=bench/requirements.txt
stamp=.venv/.bench-requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup-bench: installing bench/requirements.txt into .venv"
  .venv/bin/python -m pip install -q -r "$requirements"
  echo "$want" > "$stamp"
fi
