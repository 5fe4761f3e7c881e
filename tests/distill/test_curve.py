"""Learning curves: training in segments measures at the right steps, trains exactly as one run, keeps its points
across a resume, and plots a PNG."""

import json

import pytest
import torch

from compress.distill.curve import CURVE_FILE, curve_steps, plot_learning_curve, train_with_curve
from compress.distill.trainer import TrainConfig, train
from tests.distill.toy import ToyTask

CONFIG = TrainConfig(steps=20, batch_size=8, lr=3e-2, checkpoint_every=5, log_every=5)


def _loss_of(model) -> dict:
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        return {"value": float(((model(x) - x @ ToyTask().target) ** 2).mean())}


def test_curve_steps():
    assert curve_steps(20, 5) == [0, 5, 10, 15, 20]
    assert curve_steps(12, 5) == [0, 5, 10, 12]


def test_segments_train_exactly_as_one_run_and_measure_each_point(tmp_path):
    whole = train(ToyTask(), CONFIG, tmp_path / "whole")
    task = ToyTask()
    result, points = train_with_curve(task, CONFIG, tmp_path / "curve", every=10, measure=_loss_of)
    assert result["losses"] == pytest.approx(whole["losses"], rel=1e-6) and result["steps"] == 20
    assert [p["step"] for p in points] == [0, 10, 20]
    assert points[-1]["value"] == pytest.approx(_loss_of(task.model.eval())["value"])  # measured in eval mode
    assert points[-1]["value"] < points[0]["value"]
    assert json.loads((tmp_path / "curve" / CURVE_FILE).read_text()) == points


def test_a_resumed_run_keeps_the_points_it_measured_and_skips_those_it_passed(tmp_path):
    train_with_curve(ToyTask(), CONFIG.model_copy(update={"steps": 10}), tmp_path, every=10, measure=_loss_of)
    measured = []

    def measure(model):
        measured.append(1)
        return _loss_of(model)

    _, points = train_with_curve(ToyTask(), CONFIG, tmp_path, every=5, measure=measure)
    assert [p["step"] for p in points] == [0, 10, 15, 20]  # step 5 lay behind the checkpoint it resumed from
    assert len(measured) == 2


def test_plot_is_a_png(tmp_path):
    points = [{"step": s, "r0": s / 10, "gain": None} for s in (0, 5, 10)]
    path = plot_learning_curve(points, {"r0": lambda p: p["r0"], "gain": lambda p: p["gain"]}, {"r0": (0.8, 1.0)},
                               tmp_path / "curve.png", "toy")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
