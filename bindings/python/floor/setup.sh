#!/usr/bin/env bash
# The venvs of `make python-floor-test`: .venv-floor/NAME at the checkout's top, with
# bindings/python/floor/NAME.txt installed (the oldest version of a framework the package
# declares). Made once, quiet after that: a stamp of the requirements' hash, as
# scripts/setup-env.sh keeps for .venv; a changed list makes the venv anew.
set -euo pipefail
cd "$(dirname "$0")/../../.."
for name in "$@"; do
  requirements=bindings/python/floor/$name.txt
  venv=.venv-floor/$name
  stamp=$venv/.requirements.sha256
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup-floor: preparing $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
  fi
done
