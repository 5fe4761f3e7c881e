import pytest

from compress.stages import Stage, registered_kinds, stage_class
from tests.engine_fixtures import ScaleStage


def test_kinds_are_found_by_name():
    assert stage_class("test-scale") is ScaleStage
    assert "test-note" in registered_kinds()


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown stage kind 'nope'; known kinds: .*test-scale"):
        stage_class("nope")


def test_a_kind_cannot_be_registered_twice():
    with pytest.raises(ValueError, match="registered twice"):
        type("Again", (Stage,), {"kind": "test-scale", "__annotations__": {}})


def test_stage_names_are_checked():
    with pytest.raises(ValueError, match="not 'source'"):
        ScaleStage(name="source")
    with pytest.raises(ValueError):
        ScaleStage(name="../escape")
