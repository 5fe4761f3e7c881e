"""MediaPipe face-mesh worker, run with the landmark environment's python (``.venv-landmarks``).

Runs as a script: ``python -I _landmark_worker.py [--min-side N]``; it imports only numpy, cv2 and
mediapipe (==0.10.21: the last release that ships the legacy face-mesh .tflite models), never
``compress``. Static-image mode: every frame is detected on its own (tracking mode smooths over time
and would bias a mouth-opening series), and that mode is deterministic.

Protocol (binary, over stdin / stdout; every header is one JSON line):

- on start the worker writes ``{"ready": true, "mediapipe": VERSION, "points": 478}``;
- request: ``{"frames": T, "height": H, "width": W}`` then T*H*W*3 uint8 RGB bytes;
  reply: ``{"ok": true, "frames": T}`` then T*478*2 float32 bytes: pixel coordinates of the input
  frame (pixel centres at integers), NaN where no face was found;
- a bad request gets ``{"error": MESSAGE}``; end of input ends the worker.

Frames whose shorter side is below ``--min-side`` are upscaled (bicubic) before detection: the
detector finds small faces but places their landmarks coarsely.
"""

import argparse
import json
import os
import sys

import cv2
import numpy as np
from mediapipe import __version__ as MEDIAPIPE_VERSION
from mediapipe.python.solutions import face_mesh

NUM_POINTS = 478  # 468 mesh points + 10 iris points (refine_landmarks)


def _send(out, header: dict, payload: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n" + payload)
    out.flush()


def _landmarks(mesh, frame: np.ndarray, min_side: int) -> np.ndarray:
    """[478, 2] pixel coordinates in `frame`, NaN if no face."""
    height, width = frame.shape[:2]
    scale = max(1.0, min_side / min(height, width))
    image = frame
    if scale > 1.0:
        image = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
    result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        return np.full((NUM_POINTS, 2), np.nan, np.float32)
    norm = np.array([(p.x, p.y) for p in result.multi_face_landmarks[0].landmark], np.float64)
    return (norm * (width, height) - 0.5).astype(np.float32)


def serve(stdin, stdout, min_side: int) -> None:
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                            min_detection_confidence=0.5) as mesh:
        _send(stdout, {"ready": True, "mediapipe": MEDIAPIPE_VERSION, "points": NUM_POINTS})
        for line in iter(stdin.readline, b""):
            try:
                request = json.loads(line)
                shape = (int(request["frames"]), int(request["height"]), int(request["width"]), 3)
            except (ValueError, KeyError, TypeError) as err:
                _send(stdout, {"error": f"bad request header {line[:200]!r}: {err}"})
                return
            data = stdin.read(int(np.prod(shape)))
            if len(data) != int(np.prod(shape)):
                _send(stdout, {"error": f"expected {int(np.prod(shape))} frame bytes, got {len(data)}"})
                return
            frames = np.frombuffer(data, np.uint8).reshape(shape)
            points = np.stack([_landmarks(mesh, f, min_side) for f in frames]) if len(frames) else \
                np.zeros((0, NUM_POINTS, 2), np.float32)
            _send(stdout, {"ok": True, "frames": len(frames)}, points.tobytes())


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-side", type=int, default=256, help="upscale frames whose shorter side is below this")
    parser.add_argument("--check", action="store_true", help="load the model, report readiness and exit")
    args = parser.parse_args(argv)
    if args.check:
        with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
            found = mesh.process(np.zeros((64, 64, 3), np.uint8)).multi_face_landmarks
        print(json.dumps({"ready": True, "mediapipe": MEDIAPIPE_VERSION, "blank_image_face": bool(found)}))
        return 0
    # the protocol gets a private copy of stdout; fd 1 goes to stderr, so native log lines cannot corrupt it
    protocol_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, protocol_out, args.min_side)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
