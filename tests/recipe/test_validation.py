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
    assert p == ("bad.yaml:5: stages[0] (test-scale).input: expected 'source' or the name of an earlier "
                 "model-producing stage (source); found 'later', not an earlier stage")


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


def test_model_path_outside_roots_is_refused(workdir, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    (models / "mlp").mkdir()
    (models / "mlp" / "config.json").write_text('{"_class_name": "TinyMLP", "width": 8, "depth": 2}')
    (workdir / "r.yaml").write_text(f"model: {models}/mlp\noutput: runs/x\nstages:\n  - kind: test-note\n    text: x\n")
    with pytest.raises(RecipeError, match=r"model: expected a path inside .*add its directory to 'roots:'"):
        load_recipe(workdir / "r.yaml").check_paths(workdir)
    (workdir / "r.yaml").write_text(
        f"model: {models}/mlp\noutput: runs/x\nroots: [{models}]\nstages:\n  - kind: test-note\n    text: x\n")
    load_recipe(workdir / "r.yaml").check_paths(workdir)


# Typed stage references: each field names an earlier stage of the kinds it accepts (compress.stages.refs).

TEACHER = GOOD_HEAD.replace("test-mlp", "tiny") + """\
stages:
  - kind: reference
    max_clips: 1
  - kind: quantize
    name: int8
    input: source
    scheme: int8_weight_only
  - kind: test-note
    text: x
  - kind: sync_expert
    name: expert
    reference: reference
"""


def test_a_reference_naming_a_stage_of_the_wrong_kind_names_file_line_and_field(workdir):
    [p] = problems(workdir, TEACHER + "  - kind: prune\n    name: depth\n    method: depth\n    target: {blocks: 2}\n"
                                      "    reference: int8\n")
    assert p == ("bad.yaml:19: stages[4] (depth).reference: expected the name of an earlier 'reference' stage "
                 "(reference); found 'int8' (a 'quantize' stage)")


def test_the_wrong_kind_is_bad_input_on_the_command_line(workdir, monkeypatch, capsys):
    from tests.helpers import run_cli

    (workdir / "r.yaml").write_text(TEACHER.replace("reference: reference\n", "reference: int8\n"))
    code, _, err = run_cli(monkeypatch, capsys, "recipe", "validate", "r.yaml")
    assert code == 2 and "r.yaml:14: stages[3] (expert).reference: expected" in err and "found 'int8'" in err


@pytest.mark.parametrize("stage, message", [
    ("  - kind: test-scale\n    input: test-note\n",
     "bad.yaml:16: stages[4] (test-scale).input: expected 'source' or the name of an earlier model-producing stage "
     "(source, int8); found 'test-note' (a 'test-note' stage)"),
    ("  - kind: test-scale\n    reads: int8\n",
     "bad.yaml:16: stages[4] (test-scale).reads: expected the name of an earlier 'test-note' stage (test-note); "
     "found 'int8' (a 'quantize' stage)"),
    ("  - kind: export\n    reference: expert\n",
     "bad.yaml:16: stages[4] (export).reference: expected the name of an earlier 'reference' stage (reference); "
     "found 'expert' (a 'sync_expert' stage)"),
    ("  - kind: evaluate\n    reference: reference\n    sync_expert: reference\n",
     "bad.yaml:17: stages[4] (evaluate).sync_expert: expected the name of an earlier 'sync_expert' stage (expert); "
     "found 'reference' (a 'reference' stage)"),
    ("  - kind: evaluate\n    reference: reference\n    artifacts: [int8, expert]\n",
     "bad.yaml:17: stages[4] (evaluate).artifacts[1]: expected 'source' or the name of an earlier model-producing "
     "or 'export' stage (source, int8); found 'expert' (a 'sync_expert' stage)"),
    ("  - kind: distill\n    method: lora\n    teacher: reference\n",
     "bad.yaml:17: stages[4] (distill).teacher: expected 'source' or the name of an earlier model-producing stage "
     "(source, int8); found 'reference' (a 'reference' stage)"),
    ("  - kind: distill\n    student: lipsync-30m\n    reference: reference\n    sync_expert: later\n"
     "    losses: {sync: 1.0}\n",
     "bad.yaml:18: stages[4] (distill).sync_expert: expected the name of an earlier 'sync_expert' stage (expert); "
     "found 'later', not an earlier stage"),
])
def test_every_kind_of_reference_field_is_checked(workdir, stage, message):
    assert problems(workdir, TEACHER + stage) == [message]


def test_references_of_the_right_kind_are_valid_and_read(workdir):
    evaluate = "  - kind: evaluate\n    reference: reference\n    artifacts: [source, int8]\n    sync_expert: expert\n"
    (workdir / "r.yaml").write_text(TEACHER + evaluate)
    assert load_recipe(workdir / "r.yaml").stages[-1].referenced_stages() == {
        "reference": "reference", "artifacts[0]": "source", "artifacts[1]": "int8", "sync_expert": "expert"}


def test_a_student_does_not_read_the_lora_teacher():
    from compress.stages.distill import DistillStage

    student = DistillStage(student="lipsync-30m", reference="ref", input="source")
    assert student.referenced_stages() == {"input": "source", "reference": "ref"}
    assert DistillStage(method="lora").referenced_stages() == {"teacher": "source"}
