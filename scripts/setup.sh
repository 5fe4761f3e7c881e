#!/usr/bin/env bash
# One-time setup on a fresh machine: a virtual environment with the pinned CPU torch and the package,
# plus the Debian tools the toolkit uses offline (espeak-ng for the built-in speech). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"

if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing espeak-ng (offline speech for the built-in data set)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null) \
      || echo "warning: could not install espeak-ng; the built-in data set falls back to labelled synthetic tones"
  else
    echo "note: espeak-ng is not installed (sudo apt-get install espeak-ng); synthetic tones will stand in for speech"
  fi
fi
touch .venv/.installed
