#!/usr/bin/env bash
# The face-landmark environment (.venv-landmarks): mediapipe==0.10.21, the last release whose wheel ships the
# face-mesh models, with its numpy<2 / protobuf<5 kept out of the main .venv. Used by compress.face.landmarks
# through a worker process. Safe to re-run: does nothing when the pinned set is installed and the worker starts.
# PYTHON_LANDMARKS picks the interpreter (mediapipe 0.10.21 has wheels for CPython 3.9 to 3.12).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-landmarks
# mediapipe without its declared deps: jax/jaxlib (~360 MB), sounddevice and sentencepiece are not used by the
# face mesh, and opencv-contrib-python is swapped for the smaller headless build (same cv2 module)
MEDIAPIPE="mediapipe==0.10.21"
DEPS=("numpy==1.26.4" "protobuf==4.25.9" "absl-py==2.5.1" "attrs==26.1.0" "flatbuffers==25.12.19"
      "opencv-python-headless==4.10.0.84" "matplotlib==3.9.4")
STAMP="$VENV/.installed"
WANT="$MEDIAPIPE ${DEPS[*]}"

check() { "$VENV/bin/python" -I compress/face/_landmark_worker.py --check >/dev/null 2>&1; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && check; then
  exit 0
fi

pick_python() {
  for candidate in ${PYTHON_LANDMARKS:-} python3.12 python3.11 python3.10 python3.9 python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys, venv; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# a venv whose interpreter no longer runs (its base python was removed or moved) is rebuilt
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c "" >/dev/null 2>&1; then
  echo "rebuilding $VENV (its python does not run)"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! PY=$(pick_python); then
    echo "error: face landmarks need CPython 3.9-3.12 (mediapipe 0.10.21 wheels); set PYTHON_LANDMARKS" >&2
    exit 1
  fi
  echo "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "${DEPS[@]}"
"$VENV/bin/python" -m pip install -q --no-deps "$MEDIAPIPE"
if ! check; then
  echo "error: $VENV is installed but the landmark worker does not start:" >&2
  "$VENV/bin/python" -I compress/face/_landmark_worker.py --check >&2 || true
  exit 1
fi
echo "$WANT" > "$STAMP"
echo "face landmarks ready ($VENV, $MEDIAPIPE)"
