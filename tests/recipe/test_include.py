"""include: composition, stage merging by name, overrides, cycles and the recipes root."""

import pytest

from compress.errors import RecipeError, UserInputError
from compress.recipe import Recipe, load_recipe
from tests.engine_fixtures import NoteStage, ScaleStage


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def library(tmp_path):
    write(tmp_path / "lib" / "base.yaml", "model: test-mlp\nseed: 3\nstages:\n  - kind: test-scale\n    name: s\n    factor: 2\n")
    return tmp_path


def test_include_merges_and_the_including_file_wins(library):
    path = write(library / "main.yaml", "include: lib/base.yaml\noutput: runs/a\nseed: 5\n"
                 "stages:\n  - name: s\n    factor: 4\n  - kind: test-note\n    text: hi\n")
    recipe = load_recipe(path)
    assert recipe.seed == 5 and recipe.model == "test-mlp"
    assert [s.display_name for s in recipe.stages] == ["s", "test-note"]
    assert recipe.stages[0] == ScaleStage(name="s", factor=4)


def test_errors_in_included_files_name_that_file_and_line(library):
    write(library / "lib" / "broken.yaml", "stages:\n  - kind: test-scale\n    name: s\n    factor: many\n")
    path = write(library / "main.yaml", "include: [lib/broken.yaml]\nmodel: test-mlp\noutput: runs/a\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "lib/broken.yaml:4: stages[0] (s).factor: expected a valid number" in info.value.problems[0]


def test_include_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "include: b.yaml\nmodel: test-mlp\n")
    write(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(RecipeError, match=r"include cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_recipe(tmp_path / "a.yaml")


def test_include_may_not_escape_the_recipes_root(tmp_path):
    write(tmp_path / "outside.yaml", "model: test-mlp\n")
    path = write(tmp_path / "recipes" / "main.yaml", "include: ../outside.yaml\noutput: runs/a\nstages: []\n")
    with pytest.raises(RecipeError, match="outside the recipes root"):
        load_recipe(path)


def test_missing_include_names_the_including_file(tmp_path):
    path = write(tmp_path / "main.yaml", "include: nowhere.yaml\n")
    with pytest.raises(RecipeError, match=r"main.yaml: include: recipe file not found: .*nowhere.yaml"):
        load_recipe(path)


def test_set_overrides_address_stages_by_name(library):
    path = write(library / "main.yaml", "include: lib/base.yaml\noutput: runs/a\n")
    recipe = load_recipe(path, ["stages.s.factor=8", "output=runs/b", "stages.0.input=source"])
    assert recipe.stages[0].factor == 8 and recipe.stages[0].input == "source" and recipe.output == "runs/b"
    with pytest.raises(UserInputError, match="no stage 'nope'; stages: s"):
        load_recipe(path, ["stages.nope.factor=1"])
    with pytest.raises(RecipeError, match=r"stages\[0\] \(s\).factor: expected a valid number"):
        load_recipe(path, ["stages.s.factor=lots"])


def test_python_and_yaml_build_the_same_recipe(library):
    path = write(library / "main.yaml", "include: lib/base.yaml\noutput: runs/a\n"
                 "stages:\n  - kind: test-note\n    text: hi\n")
    built = Recipe(model="test-mlp", output="runs/a", seed=3,
                   stages=[ScaleStage(name="s", factor=2), {"kind": "test-note", "text": "hi"}])
    assert built.stages[1] == NoteStage(text="hi")
    assert built.recipe_hash() == load_recipe(path).recipe_hash()
