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

# Debian tools used offline: espeak-ng speaks the built-in data set, ffmpeg writes mp4 with sound, chromium
# renders the leaderboard page in its test
missing=$(for tool in espeak-ng ffmpeg chromium; do command -v "$tool" >/dev/null 2>&1 || printf "%s " "$tool"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
      || echo "warning: could not install $missing (speech falls back to labelled synthetic tones; video to PNG + WAV; the leaderboard page test skips)"
  else
    echo "note: not installed: $missing (sudo apt-get install $missing); speech falls back to labelled" \
         "synthetic tones, video to PNG frames + WAV, the leaderboard page test skips"
  fi
fi
# face landmarks for lip-sync tier A: mediapipe in its own environment (.venv-landmarks)
bash scripts/setup_landmarks.sh || echo "warning: no landmark environment; lip-sync tier A will report 'not computed'"
touch .venv/.installed
