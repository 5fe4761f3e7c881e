"""The per-frame chain's cost: its networks per masked-input mode, GMACs equal to the counter's on real models,
their sum, and the frame rate the target's budget implies."""

import pytest
import torch
from diffusers import AutoencoderKLWan

from compress.export.chain import FrameEncoder, chain_links, chain_report
from compress.export.onnx_export import count_macs
from compress.export.targets import StaticShapes, load_target
from compress.models.students import LIPSYNC_PRESETS, DECODER_PRESETS, LipSyncStudent, TinyVAEDecoder

SMALL = {"channels": 32, "mid_blocks": 1, "audio_channels": 32, "audio_dim": 32}


def phone(height=64, width=96):
    return load_target("snapdragon-8gen3").model_copy(update={"shapes": StaticShapes(height=height, width=width)})


@pytest.mark.parametrize("mode, networks", [
    ("target", ["driving-frame encoder", "lip-sync student", "tiny VAE decoder"]),
    ("reference", ["lip-sync student", "tiny VAE decoder"])])
def test_chain_networks_per_mode_sum_to_the_total(mode, networks):
    chain = chain_report(LipSyncStudent(**SMALL, masked_input=mode), phone())
    assert list(chain["networks"]) == networks and chain["masked_input"] == mode
    assert chain["gmacs_per_frame"] == pytest.approx(sum(n["gmacs_per_frame"] for n in chain["networks"].values()))
    assert chain["budget"]["source"] == load_target("snapdragon-8gen3").budget.source


def test_meta_counts_equal_the_counter_on_real_models():
    """Each network's meta-device count equals (to 1e-4) the counter on the real network at a small frame size."""
    torch.manual_seed(0)
    student = LipSyncStudent(**SMALL)
    real = {"lip-sync student": student, "tiny VAE decoder": TinyVAEDecoder(**DECODER_PRESETS["tiny-frame-decoder"]),
            "driving-frame encoder": FrameEncoder(AutoencoderKLWan())}
    links = chain_links(dict(student.config), 32, 32)
    assert [link.name for link in links] == ["driving-frame encoder", "lip-sync student", "tiny VAE decoder"]
    for link in links:
        inputs = {name: torch.randn(value.shape) for name, value in link.inputs.items()}
        # the VAE's meta and real runs differ by 3e-5 of the count (27,648 of 1.28e9 MACs at 16x24 pixels)
        assert count_macs(link.model, link.inputs) == pytest.approx(count_macs(real[link.name], inputs), rel=1e-4)
    assert real["driving-frame encoder"](torch.randn(1, 3, 32, 32)).shape == (1, 16, 4, 4)


def test_implied_fps_is_the_budgets_throughput_over_the_chains_gmacs():
    target = load_target("snapdragon-8gen3-480x832")
    chain = chain_report(LipSyncStudent(**LIPSYNC_PRESETS["lipsync-30m"], masked_input="reference"), target)
    budget, total = chain["budget"], chain["gmacs_per_frame"]
    assert (chain["height"], chain["width"]) == (480, 832)
    assert budget["implied_fps"] == pytest.approx(4290 / total)
    assert budget["implied_ms_per_frame"] == pytest.approx(total / 4290 * 1000)
    assert budget["share_of_budget"] == pytest.approx(budget["implied_ms_per_frame"] / (1000 / 15))
    # one call per frame, one frame out (tiny-frame-decoder): the trunk (60x104 latents x 256 channels) per frame,
    # the pixel stages for one frame; measured 21.1 (tiny-vae-decoder's call of 4 frames: over 30)
    assert 20 < chain["networks"]["tiny VAE decoder"]["gmacs_per_frame"] < 30


def test_no_chain_for_other_models():
    assert chain_report(TinyVAEDecoder(**DECODER_PRESETS["tiny-vae-decoder"]), phone()) is None
    assert chain_report(LipSyncStudent(**SMALL), load_target("cpu"))["budget"] is None


def test_a_student_export_reports_its_chain(tmp_path):
    from compress.export import ExportRequest, run_export
    from compress.stages.export import stage_metrics

    (tmp_path / "cpu.yaml").write_text("name: cpu-8gen3\nextends: snapdragon-8gen3\nruntime: cpu\nqnn: null\n"
                                       "shapes: {height: 64, width: 64}\n")
    torch.manual_seed(0)
    student = LipSyncStudent(**SMALL, masked_input="reference")
    report = run_export(ExportRequest(student, load_target(tmp_path / "cpu.yaml"), precision="none",
                                      latency_repeats=1), tmp_path / "out")
    chain = report["chain"]
    assert chain["networks"]["lip-sync student"]["gmacs_per_frame"] == report["budget"]["gmacs_per_frame"]
    metrics = stage_metrics(report)
    assert metrics["chain_gmacs_per_frame"] == chain["gmacs_per_frame"] > report["budget"]["gmacs_per_frame"]
    assert metrics["chain_implied_fps"] == pytest.approx(4290 / chain["gmacs_per_frame"])
