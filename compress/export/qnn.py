"""Running a QDQ model on Qualcomm's HTP through onnxruntime's QNN execution provider (the
`onnxruntime-qnn` plugin; on x86-64 Linux its HTP backend is a simulator).

The plugin is registered with `register_execution_provider_library` and selected by device
(`add_provider_for_devices`): naming "QNNExecutionProvider" in `providers=` silently runs on the CPU, so
that form is never used. Placement is measured from the offline context model that the EP writes
(`ep.context_enable`): every node the HTP took is inside an EPContext node, every other node stays as it
was and would run on the CPU. Only a graph with none left over is run again with CPU fallback disabled.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

EP_NAME = "QNNExecutionProvider"
_registered: list[str] = []


@dataclass
class QnnStatus:
    available: bool
    reason: str = ""
    version: str = ""


def qnn_status() -> QnnStatus:
    """Whether the QNN plugin can be registered here, and why not."""
    if importlib.util.find_spec("onnxruntime_qnn") is None:
        return QnnStatus(False, "the onnxruntime-qnn package is not installed (pip install onnxruntime-qnn); "
                                "HTP verification skipped")
    try:
        devices = _qnn_devices()
    except Exception as err:  # a broken or mismatched plugin library: report it, never fall back silently
        return QnnStatus(False, f"onnxruntime-qnn could not be registered: {type(err).__name__}: {err}")
    if not devices:
        return QnnStatus(False, "onnxruntime-qnn registered but offers no device on this machine")
    import onnxruntime_qnn

    return QnnStatus(True, version=onnxruntime_qnn.__version__)


def _qnn_devices() -> list:
    import onnxruntime as ort
    import onnxruntime_qnn

    if not _registered:
        ort.register_execution_provider_library(onnxruntime_qnn.get_ep_name(), onnxruntime_qnn.get_library_path())
        _registered.append(onnxruntime_qnn.get_ep_name())
    return [d for d in ort.get_ep_devices() if d.ep_name == EP_NAME]


def htp_options(htp_arch: int | None = None, soc_model: int | None = None) -> dict[str, str]:
    """HTP backend options; graph input quantization and output dequantization stay on the HTP too."""
    options = {"backend_type": "htp", "offload_graph_io_quantization": "0"}
    if htp_arch is not None:
        options["htp_arch"] = str(htp_arch)
    if soc_model is not None:
        options["soc_model"] = str(soc_model)
    return options


def htp_session(model_path: Path, options: dict[str, str], allow_cpu_fallback: bool = False,
                context_path: Path | None = None):
    """An InferenceSession on the HTP; with `context_path`, the EP also writes the offline context model
    there (and its binary `<name>_qnn.bin` beside it)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "0" if allow_cpu_fallback else "1")
    if context_path is not None:
        so.add_session_config_entry("ep.context_enable", "1")
        so.add_session_config_entry("ep.context_embed_mode", "0")
        so.add_session_config_entry("ep.context_file_path", str(context_path))
    so.add_provider_for_devices(_qnn_devices(), options)
    return ort.InferenceSession(str(model_path), sess_options=so)


def placement(source: onnx.ModelProto, context: onnx.ModelProto) -> dict:
    """Share of `source`'s nodes that the HTP took, from the context model the EP wrote for it."""
    left = [n for n in context.graph.node if n.op_type != "EPContext"]
    total = len(source.graph.node)
    return {"nodes": total, "on_htp": total - len(left), "htp_share": (total - len(left)) / max(total, 1),
            "partitions": sum(n.op_type == "EPContext" for n in context.graph.node),
            "not_on_htp": dict(Counter(n.op_type for n in left)), "not_on_htp_nodes": [n.name for n in left][:50]}


def verify_on_htp(qdq_path: Path, feeds: list[dict[str, np.ndarray]], out_dir: Path, options: dict[str, str]
                  ) -> dict:
    """Place `qdq_path` on the HTP, write its context model + binary into `out_dir`, and when every node is
    on the HTP run it with CPU fallback disabled on each feed. Returns the placement, status and (if run)
    outputs: per feed, the list of graph outputs."""
    status = qnn_status()
    if not status.available:
        return {"status": "unavailable", "reason": status.reason}
    context_path = Path(out_dir) / "model.qnn_ctx.onnx"
    for stale in Path(out_dir).glob("model.qnn_ctx*"):  # the EP refuses to overwrite a context model
        stale.unlink()
    htp_session(qdq_path, options, allow_cpu_fallback=True, context_path=context_path)
    result = {"status": "ran", "qnn_version": status.version, "backend": "htp (x86-64 simulator)", "options": options,
              **placement(onnx.load(qdq_path, load_external_data=False), onnx.load(context_path))}
    result["context_files"] = sorted(p.name for p in Path(out_dir).glob("model.qnn_ctx*"))
    if result["not_on_htp"]:
        result["status"] = "partial"
        result["reason"] = f"ops left for the CPU: {result['not_on_htp']}; not run (CPU fallback is not NPU success)"
        return result
    session = htp_session(context_path, options, allow_cpu_fallback=False)
    result["outputs"] = [session.run(None, feed) for feed in feeds]
    return result
