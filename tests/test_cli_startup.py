"""The command line starts at once: parsing recipes, registering every stage kind and inspecting a preset import
none of the heavy libraries (torch alone takes seconds to import). scripts/bench_cli_startup.py times it."""

import subprocess
import sys

from tests.helpers import REPO

HEAVY = ("torch", "diffusers", "transformers", "datasets", "onnxruntime", "peft")


def heavy_imports(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter holds after running `code`."""
    check = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_the_cli_the_recipe_and_every_stage_kind_import_without_heavy_libraries():
    assert heavy_imports("import compress.cli, compress.recipe\nfrom compress.stages import registered_kinds\n"
                         "registered_kinds()") == []


def test_validating_a_recipe_and_inspecting_a_preset_stay_light():
    code = ("from compress.recipe import load_recipe\nfrom compress.inspection import inspect_target\n"
            "load_recipe('recipes/quickstart.yaml')\ninspect_target('tiny')")
    assert heavy_imports(code) == []
