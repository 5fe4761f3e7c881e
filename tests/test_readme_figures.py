"""README shows the quickstart recipe as it is, and its figures come from `scripts/quickstart_figures.py`: the block
is there, says so, and lists the stages the recipe has now (a recipe change without a rerun of the script fails)."""

import re

from compress.recipe import load_recipe
from tests.helpers import REPO


def test_readme_quickstart_block_matches_the_recipe():
    readme = (REPO / "README.md").read_text()
    match = re.search(r"<!-- quickstart-figures:begin -->\n(.*?)\n<!-- quickstart-figures:end -->", readme, re.S)
    assert match, "README has no quickstart-figures block: run python scripts/quickstart_figures.py readme"
    text = match[1]
    assert text.startswith("Written by `python scripts/quickstart_figures.py readme` at commit ")
    summary = text.split("```")[1]
    listed = [row.split("│")[1].strip() for row in summary.splitlines() if row.startswith("│") and
              row.split("│")[1].strip()]
    stages = [stage.display_name for stage in load_recipe(REPO / "recipes" / "quickstart.yaml").stages]
    assert listed == ["source", *stages]


def test_readme_shows_the_quickstart_recipe_as_it_is():
    readme = (REPO / "README.md").read_text()
    shown = readme.split("# recipes/quickstart.yaml\n", 1)[1].split("```", 1)[0]
    lines = (REPO / "recipes" / "quickstart.yaml").read_text().splitlines(keepends=True)
    assert shown == "".join(lines[next(i for i, line in enumerate(lines) if not line.startswith("#")):])
