"""Recipe files: `include:` composition, `--set` overrides, validation with file and line."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from compress.errors import RecipeError, UserInputError
from compress.recipe.graph import StageGraphError
from compress.recipe.schema import Recipe, parse_stage
from compress.utils.paths import is_inside
from compress.utils.problems import located, problems_from
from compress.utils.yamlio import LocDict, LocList, SafeLineLoader, YAMLInputError, load_located, to_plain


def _include_list(data: LocDict, where: str) -> list[str]:
    value = data.pop("include", [])
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecipeError([f"{where}: include: expected a file name or a list of file names; found {value!r}"])
    return value


def _stage_key(stage, index: int):
    return stage.get("name", stage.get("kind")) if isinstance(stage, dict) else index


def merge(base, override):
    """Deep merge: mappings merge key by key, `stages` merge by stage name, other values are replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = LocDict(base, loc=getattr(override, "loc", None))
        merged.locs = {**getattr(base, "locs", {}), **getattr(override, "locs", {})}
        for key, value in override.items():
            if key == "stages" and isinstance(base.get(key), list) and isinstance(value, list):
                merged[key] = _merge_stages(base[key], value)
            else:
                merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def _merge_stages(base: list, override: list) -> LocList:
    stages = LocList(base, loc=getattr(override, "loc", None))
    base_keys = [_stage_key(s, i) for i, s in enumerate(base)]
    for i, stage in enumerate(override):
        key = _stage_key(stage, i)
        if isinstance(stage, dict) and key in base_keys:
            stages[base_keys.index(key)] = merge(stages[base_keys.index(key)], stage)
        else:
            stages.append(stage)
    return stages


def read_recipe_tree(path: Path, root: Path, chain: tuple[Path, ...] = ()) -> LocDict:
    """Load a recipe file and everything it includes, merged (the including file wins)."""
    given, path = path, path.resolve()
    display = _display(path, root)
    if path in chain:
        cycle = " -> ".join(_display(p, root) for p in (*chain, path))
        raise RecipeError([f"include cycle: {cycle}"])
    if not is_inside(path, [root]):
        where = f"{_display(chain[-1], root)}: include" if chain else "recipe"
        raise RecipeError([f"{where}: '{given}' resolves to '{path}', outside the recipes root {root}"])
    if not path.is_file():
        where = f"{_display(chain[-1], root)}: include: " if chain else ""
        raise RecipeError([f"{where}recipe file not found: {display}"])
    try:
        data = load_located(path, display)
    except YAMLInputError as err:
        raise RecipeError([str(err)]) from None
    if not isinstance(data, dict):
        raise RecipeError([f"{display}: expected a mapping of recipe fields at the top level; found {type(data).__name__}"])
    merged = LocDict(loc=data.loc)
    for name in _include_list(data, display):
        merged = merge(merged, read_recipe_tree(path.parent / name, root, (*chain, path)))
    return merge(merged, data)


def apply_override(data: dict, assignment: str) -> None:
    """`stages.int8.scheme=fp8_weight_only`: a dotted path (stages addressed by name or index) = a YAML value."""
    path, sep, raw = assignment.partition("=")
    if not sep or not path:
        raise UserInputError(f"override '{assignment}': expected KEY.PATH=VALUE")
    *parents, last = path.split(".")
    node, where = data, "the recipe"
    for part in parents:
        node, where = _child(node, part, where, assignment), part
    if not isinstance(node, (dict, list)):
        raise UserInputError(f"override '{assignment}': '{where}' is {node!r}, not a mapping; cannot set '{last}'")
    if isinstance(node, list):
        last = _stage_index(node, last, assignment)
    try:
        node[last] = yaml.load(raw, SafeLineLoader)
    except yaml.YAMLError as err:
        raise UserInputError(f"override '{assignment}': the value of '{path}' is not valid YAML: {err}") from None


def _child(node, part: str, where: str, assignment: str):
    if isinstance(node, list):
        return node[_stage_index(node, part, assignment)]
    if isinstance(node, dict):
        return node.setdefault(part, {})
    raise UserInputError(f"override '{assignment}': '{where}' is {node!r}, not a mapping; cannot set '{part}'")


def _stage_index(stages: list, key: str, assignment: str) -> int:
    if key.isdigit() and int(key) < len(stages):
        return int(key)
    keys = [_stage_key(s, i) for i, s in enumerate(stages)]
    if key not in keys:
        raise UserInputError(f"override '{assignment}': no stage '{key}'; stages: {', '.join(map(str, keys))}")
    return keys.index(key)


def recipe_from_tree(data: dict) -> Recipe:
    """Validate a merged tree, collecting every problem (with its line) before raising."""
    problems, stages = [], []
    raw_stages = data.get("stages")
    if isinstance(raw_stages, list):
        for i, item in enumerate(raw_stages):
            try:
                stages.append(parse_stage(item, i))
            except RecipeError as err:
                problems.extend(err.problems)
    header = {k: v for k, v in data.items() if k != "stages"}
    try:
        recipe = Recipe.model_validate({**to_plain(header),
                                        "stages": stages if isinstance(raw_stages, list) else raw_stages})
    except ValidationError as err:
        # with bad stages the list is incomplete: their own problems say why
        problems = problems_from(err, data, Recipe, skip=("stages",) if problems else ()) + problems
    except StageGraphError as err:
        if not problems:  # with bad stages the graph is incomplete (and its indices shifted): fix those first
            problems = [located(data, loc, text) for loc, text in err.located]
    if problems:
        raise RecipeError(problems)
    return recipe


def load_recipe(path: Path, overrides=(), recipes_root: Path | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"recipe file not found: {path}")
    root = (recipes_root or path.parent).resolve()
    data = read_recipe_tree(path, root)
    for assignment in overrides:
        apply_override(data, assignment)
    recipe = recipe_from_tree(data)
    recipe._source_file = path
    return recipe


def _display(path: Path, root: Path) -> str:
    """A short name for messages: relative to the working directory, else to the recipes root's parent."""
    for base in (Path.cwd(), root.parent):
        if base == path or base in path.parents:
            return str(path.relative_to(base))
    return str(path)
