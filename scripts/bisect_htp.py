"""Find the node where a QDQ model's output on the QNN HTP simulator departs from onnxruntime's CPU run.

    python scripts/bisect_htp.py runs/quickstart/09-phone/model.qdq.onnx
    python scripts/bisect_htp.py model.qdq.onnx --inputs feed.npz --threshold 0.01

The model is cut at its quantized activations and each cut runs on both backends (see
`compress.export.bisect`); a failed export's report.json names the same suspect under `htp.suspect`. Without
`--inputs` (an .npz keyed by graph input name) the feed is standard normal, which may fall outside the
calibrated input ranges: the HTP and the CPU clip those differently (about 0.01-0.02 rel L2 on the students).
Needs onnxruntime-qnn; a model of a few hundred activations takes 10-20 probes (about a minute).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from compress.export import qnn, report
from compress.export.bisect import Bisector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a QDQ ONNX model (model.qdq.onnx)")
    parser.add_argument("--inputs", help=".npz of graph inputs (default: standard normal, seed 0)")
    parser.add_argument("--threshold", type=float, default=0.02, help="rel L2 above which an activation differs")
    parser.add_argument("--htp-arch", type=int, default=75)
    parser.add_argument("--soc-model", type=int, default=57)
    args = parser.parse_args()
    status = qnn.qnn_status()
    if not status.available:
        raise SystemExit(status.reason)
    if args.inputs:
        feed = dict(np.load(args.inputs))
    else:
        rng = np.random.default_rng(0)
        feed = {i.name: rng.standard_normal(i.shape).astype(np.float32)
                for i in report.cpu_session(args.model).get_inputs()}
    bisector = Bisector(args.model, feed, qnn.htp_options(args.htp_arch, args.soc_model), args.threshold)
    suspect = bisector.suspect()
    for tap, errors in bisector.probes.items():
        print(f"{errors['rel_l2']:10.4g}  {bisector.node(tap).op_type if bisector.node(tap) else 'input':20s} {tap}")
    print(json.dumps(suspect, indent=2) if suspect else f"the output agrees within {args.threshold} rel L2")


if __name__ == "__main__":
    main()
