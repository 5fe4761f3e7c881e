#!/usr/bin/env bash
# One-time setup on a fresh machine: a virtual environment with the pinned CPU torch and the package,
# plus the Debian tools the toolkit uses offline (espeak-ng, ffmpeg). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"

# Debian tools used offline: espeak-ng speaks the built-in data set, ffmpeg writes mp4 with sound
missing=$(for tool in espeak-ng ffmpeg; do command -v "$tool" >/dev/null 2>&1 || printf "%s " "$tool"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "warning: could not install $missing (speech falls back to labelled synthetic tones; video to PNG + WAV)"
  else
    echo "note: not installed: $missing (sudo apt-get install $missing); speech falls back to labelled" \
         "synthetic tones, video to PNG frames + WAV"
  fi
fi
touch .venv/.installed
