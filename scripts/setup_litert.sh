#!/usr/bin/env bash
# The LiteRT environment (.venv-litert) for the dimensity-9300 targets: the package with its `litert` extra (~760 MB
# with jax). Kept apart from .venv because the extra's converter pins xdsl==0.28, which caps typing-extensions below
# 4.13 and so moves pydantic back to 2.11 and wandb to 0.30 (compress runs on both sets). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-litert
PYTHON=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[dev,litert]"
touch "$VENV/.installed"
echo "LiteRT ready ($VENV): $VENV/bin/compress export onnx MODEL -t dimensity-9300"
