"""Suites: the shipped ones load; bad files fail naming the file, line and field; gates pass / fail / n/a."""

import pytest

from compress.errors import UserInputError
from compress.evaluate.suite import Gate, load_suite


@pytest.mark.parametrize("name", ["default", "quickstart"])
def test_shipped_suites_load(name):
    suite = load_suite(name)
    assert suite.name == name and suite.gates and suite.lipsync.tiers == ["A", "B", "C"]


def test_unknown_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncost:\n  latency_repeats: 2\n  latncy_warmup: 1\n")
    with pytest.raises(UserInputError, match=r"bad\.yaml:4: cost\.latncy_warmup: unknown field 'latncy_warmup'"):
        load_suite(str(path))


def test_bad_values_and_gates_without_bounds(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("name: g\nlipsync: {tiers: [A, D]}\ngates:\n  - {metric: fidelity.frame_psnr}\n")
    with pytest.raises(UserInputError) as err:
        load_suite(str(path))
    message = str(err.value)
    assert "gates.yaml:2: lipsync.tiers[1]: expected 'A', 'B' or 'C'; found 'D'" in message
    assert "gates.yaml:4: gates[0]: expected a gate needs min, max or both" in message


def test_unknown_suite_lists_known_ones():
    with pytest.raises(UserInputError, match=r"no suite named 'nope'.*default.*quickstart"):
        load_suite("nope")


def test_gate_checks():
    gate = Gate(metric="fidelity.frame_psnr", min=30, max=60)
    assert gate.check({"fidelity.frame_psnr": 40.0})["passed"] is True
    assert gate.check({"fidelity.frame_psnr": 29.9}) == {"name": "fidelity.frame_psnr", "value": 29.9,
                                                         "bound": ">= 30 and <= 60", "passed": False}
    assert gate.check({"fidelity.frame_psnr": 61})["passed"] is False
    assert gate.check({})["passed"] is None  # not computed: neither pass nor fail
    assert gate.check({"fidelity.frame_psnr": float("nan")})["passed"] is None
