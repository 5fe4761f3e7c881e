"""Target profiles: built-ins load, bad YAML is named by file, line and field, op coverage."""

import pytest

from compress.errors import UserInputError
from compress.export.targets import load_target, target_names


def test_builtin_targets_load_with_their_budgets():
    assert {"snapdragon-8gen3", "snapdragon-8gen3-480x832", "cpu"} <= set(target_names())
    phone = load_target("snapdragon-8gen3")
    assert (phone.runtime, phone.precision, phone.opset, phone.shapes.batch_size) == ("qnn-htp", "w8a16", 21, 1)
    assert (phone.shapes.height, phone.shapes.width) == (256, 256)
    assert phone.budget.ms_per_frame == pytest.approx(66.67, abs=0.01)
    assert load_target("cpu").unsupported_ops(["Mod", "NonZero"]) == []
    assert phone.unsupported_ops(["Conv", "NonZero", "Mod"]) == ["Mod", "NonZero"]


def test_unknown_field_names_file_line_and_field(tmp_path):
    path = tmp_path / "phone.yaml"
    path.write_text("name: p\nruntime: cpu\nprecision: w8a8\nopset: 21\nshapes: {batch_size: 1, heigth: 64}\n")
    with pytest.raises(UserInputError) as err:
        load_target(path)
    assert f"{path}:5: shapes.heigth: unknown field 'heigth' (did you mean 'height'?)" in str(err.value)


def test_bad_values_and_unknown_names(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: p\nruntime: npu\nprecision: w4a4\nopset: 21\n")
    with pytest.raises(UserInputError) as err:
        load_target(path)
    message = str(err.value)
    assert f"{path}:2: runtime: expected 'qnn-htp', 'cpu', 'coreml' or 'litert'; found 'npu'" in message
    assert f"{path}:3: precision:" in message and "'w4a4'" in message
    with pytest.raises(UserInputError, match="unknown target 'snapdragon-9'; built-in targets: a17-pro, "
                                             "a17-pro-480x832, cpu, dimensity-9300, dimensity-9300-480x832, "
                                             "snapdragon-8gen3, snapdragon-8gen3-480x832"):
        load_target("snapdragon-9")


def test_portrait_profile_extends_the_face_crop_one():
    face, portrait = load_target("snapdragon-8gen3"), load_target("snapdragon-8gen3-480x832")
    assert (portrait.name, portrait.extends, portrait.shapes.height, portrait.shapes.width) == (
        "snapdragon-8gen3-480x832", "snapdragon-8gen3", 480, 832)
    inherited = portrait.model_dump(exclude={"name", "description", "extends", "shapes"})
    assert inherited == face.model_dump(exclude={"name", "description", "extends", "shapes"})
    assert portrait.budget.effective_gmacs_per_s == 4290 and portrait.qnn.htp_arch == 75


def test_extends_a_file_beside_it_and_errors_name_the_child(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nruntime: cpu\nprecision: w8a8\nopset: 20\n")
    child = tmp_path / "child.yaml"
    child.write_text("name: child\nextends: base.yaml\nopset: 21\n")
    assert (load_target(child).runtime, load_target(child).opset) == ("cpu", 21)
    child.write_text("name: child\nextends: base.yaml\nopset: 9\n")
    with pytest.raises(UserInputError, match=rf"{child}:3: opset: expected greater than or equal to 17"):
        load_target(child)
    (tmp_path / "base.yaml").write_text("name: base\nextends: child.yaml\n")
    child.write_text("name: child\nextends: ../base.yaml\n")
    with pytest.raises(UserInputError, match=rf"{child}: extends: expected a built-in target or a file name in "):
        load_target(child)
    child.write_text("name: child\nextends: base.yaml\n")
    with pytest.raises(UserInputError, match="'extends' loops: .*child.yaml -> .*base.yaml -> .*child.yaml"):
        load_target(child)
