"""Where the HTP and onnxruntime's CPU run of one QDQ model part.

Each probe cuts the model at one quantized activation (the output of a DequantizeLinear that reads an
activation), compiles the cut model for the HTP and compares it with onnxruntime's CPU run on the same feed.
Cutting (not adding graph outputs) keeps the HTP's fusions as they are in the whole model: a tensor that is
also a graph output is not fused away, and the divergence can hide. A binary search over the activations
in graph order finds a diverging one; walking up to the first diverging input then gives a node whose output
differs while its inputs agree: the suspect.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx.utils import Extractor

from compress.export import qnn, report


class Bisector:
    """HTP-vs-CPU probes of one QDQ model at its quantized activations (see the module docstring)."""

    def __init__(self, qdq_path: Path, feed: dict[str, np.ndarray], options: dict[str, str],
                 threshold: float = 0.02):
        self.model = onnx.shape_inference.infer_shapes(onnx.load(qdq_path))
        self.feed, self.options, self.threshold = feed, options, threshold
        self.producers = {out: node for node in self.model.graph.node for out in node.output}
        initializers = {i.name for i in self.model.graph.initializer}
        self.taps = [n.output[0] for n in self.model.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] not in initializers]
        self.probes: dict[str, dict] = {}

    def node(self, tap: str) -> onnx.NodeProto | None:
        """The compute node whose output `tap` dequantizes (None for a graph input)."""
        quant = self.producers.get(self.producers[tap].input[0])
        return self.producers.get(quant.input[0]) if quant is not None else None

    def probe(self, tap: str) -> dict:
        """HTP vs CPU QDQ errors of the model cut at `tap` (cached)."""
        if tap not in self.probes:
            cut = Extractor(self.model).extract_model([i.name for i in self.model.graph.input], [tap])
            feed = {i.name: self.feed[i.name] for i in cut.graph.input}
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "cut.onnx"
                onnx.save(cut, path)
                cpu = report.cpu_session(path).run(None, feed)[0]
                htp = qnn.htp_session(path, self.options).run(None, feed)[0]
            self.probes[tap] = report.errors(htp, cpu)
        return self.probes[tap]

    def bad(self, tap: str) -> bool:
        return self.probe(tap)["rel_l2"] > self.threshold

    def upstream(self, tap: str) -> list[str]:
        """The nearest activations that the node behind `tap` reads."""
        found, stack, seen = [], list(self.node(tap).input) if self.node(tap) else [], set()
        while stack:
            name = stack.pop()
            if name in seen or name not in self.producers:
                continue
            seen.add(name)
            if name in self.taps:
                found.append(name)
            else:
                stack += self.producers[name].input
        return found

    def suspect(self) -> dict | None:
        """A node whose output differs on the HTP while its inputs agree, or None when the last activation
        agrees."""
        low, high = 0, len(self.taps) - 1
        if not self.taps or not self.bad(self.taps[high]):
            return None
        while low < high:  # the first diverging activation in graph order, if errors persist downstream
            middle = (low + high) // 2
            low, high = (low, middle) if self.bad(self.taps[middle]) else (middle + 1, high)
        tap = self.taps[high]
        while bad_input := next((t for t in self.upstream(tap) if self.bad(t)), None):
            tap = bad_input
        node = self.node(tap)
        return {"tensor": tap, "node": f"{node.op_type} {node.name}" if node else "graph input",
                "rel_l2": self.probe(tap)["rel_l2"],
                "inputs": {t: self.probe(t)["rel_l2"] for t in self.upstream(tap)}, "probes": len(self.probes)}
