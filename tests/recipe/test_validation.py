"""Bad recipes get one clear message per problem: file, line, field path, expected and found."""

import textwrap

import pytest

from compress.errors import RecipeError
from compress.recipe import load_recipe


def problems(workdir, text: str) -> list[str]:
    path = workdir / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return info.value.problems


GOOD_HEAD = """\
model: test-mlp
output: runs/x
"""


def test_unknown_stage_kind_lists_known_kinds(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - kind: quantise\n")
    assert "stages[0].kind" in p and "unknown stage kind 'quantise'" in p and "test-scale" in p


def test_typo_in_stage_field_is_an_error_with_suggestion(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - kind: test-scale\n    factr: 2\n")
    assert p.startswith("bad.yaml:5: stages[0].factr: unknown field 'factr' (did you mean 'factor'?)")


def test_wrong_type_names_expected_and_found(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - kind: test-scale\n    name: big\n    factor: huge\n")
    assert p.startswith("bad.yaml:6: stages[0] (big).factor: expected a valid number")
    assert "'huge'" in p


def test_constraint_violation(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - kind: test-scale\n    factor: -1\n")
    assert "stages[0].factor: expected greater than 0" in p and "-1" in p


def test_missing_required_stage_field(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - kind: test-note\n")
    assert p == "bad.yaml:4: stages[0].text: required field is missing"


def test_missing_top_level_fields_and_unknown_top_level_field(workdir):
    found = problems(workdir, "modle: test-mlp\nstages:\n  - kind: test-note\n    text: hi\n")
    assert any("model: required field is missing" in p for p in found)
    assert any("output: required field is missing" in p for p in found)
    assert any(p.startswith("bad.yaml:1: modle: unknown field 'modle' (did you mean 'model'?)") for p in found)


def test_every_bad_stage_is_reported(workdir):
    found = problems(workdir, GOOD_HEAD + "stages:\n  - kind: nope\n  - kind: test-scale\n    factor: 0\n")
    assert len(found) == 2
    assert "stages[0].kind" in found[0] and "stages[1].factor" in found[1]


def test_duplicate_stage_names(workdir):
    found = problems(workdir, GOOD_HEAD + "stages:\n  - kind: test-scale\n  - kind: test-scale\n")
    assert any("stages[1] (test-scale).name: expected a unique stage name" in p for p in found)


def test_input_must_name_an_earlier_stage(workdir):
    text = GOOD_HEAD + "stages:\n  - kind: test-scale\n    input: later\n  - kind: test-note\n    name: later\n    text: x\n"
    [p] = problems(workdir, text)
    assert "stages[0] (test-scale).input: expected 'source' or the name of an earlier stage" in p and "'later'" in p


def test_stages_must_be_a_list_of_mappings(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages:\n  - test-scale\n")
    assert "stages[0]: expected a mapping with a 'kind' field; found 'test-scale'" in p


def test_empty_stage_list(workdir):
    [p] = problems(workdir, GOOD_HEAD + "stages: []\n")
    assert p.startswith("bad.yaml:3: stages: expected ") and "at least 1 item" in p


def test_duplicate_yaml_key(workdir):
    [p] = problems(workdir, GOOD_HEAD + "output: again\nstages:\n  - kind: test-note\n    text: x\n")
    assert "duplicate key 'output'" in p and ":3" in p


def test_invalid_yaml(workdir):
    [p] = problems(workdir, "model: [unclosed\n")
    assert p.startswith("bad.yaml: not valid YAML")


def test_output_may_not_escape_the_working_root(workdir):
    (workdir / "r.yaml").write_text("model: test-mlp\noutput: ../elsewhere\nstages:\n  - kind: test-note\n    text: x\n")
    recipe = load_recipe(workdir / "r.yaml")
    with pytest.raises(RecipeError, match=r"output: expected a directory inside the working root"):
        recipe.check_paths(workdir)


def test_model_path_outside_roots_is_refused(workdir):
    (workdir / "r.yaml").write_text("model: /opt/models/wan\noutput: runs/x\nstages:\n  - kind: test-note\n    text: x\n")
    with pytest.raises(RecipeError, match=r"model: expected a path inside .*add its directory to 'roots:'"):
        load_recipe(workdir / "r.yaml").check_paths(workdir)
    (workdir / "r.yaml").write_text(
        "model: /opt/models/wan\noutput: runs/x\nroots: [/opt/models]\nstages:\n  - kind: test-note\n    text: x\n")
    load_recipe(workdir / "r.yaml").check_paths(workdir)
