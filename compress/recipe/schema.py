"""The recipe: a model source, an output directory and an ordered list of typed stages."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from compress.errors import RecipeError, UserInputError
from compress.models.config_check import read_model_config
from compress.recipe.graph import check_stage_graph
from compress.sources import ModelSource
from compress.stages.base import Stage, registered_kinds, stage_class
from compress.utils.paths import allowed_roots, is_inside, looks_like_path, outside_problem
from compress.utils.problems import problems_from


def parse_stage(data: Any, index: int) -> Stage:
    """Build the stage object of the registered kind; raises RecipeError naming each bad field."""
    prefix = f"stages[{index}]"
    if not isinstance(data, dict):
        raise RecipeError([f"{prefix}: expected a mapping with a 'kind' field; found {data!r}"])
    if "name" in data:
        prefix += f" ({data['name']})"
    kind = data.get("kind")
    if kind is None:
        raise RecipeError([f"{prefix}.kind: required field is missing; known kinds: {', '.join(registered_kinds())}"])
    try:
        cls = stage_class(kind)
    except KeyError as err:
        raise RecipeError([f"{prefix}.kind: {err.args[0]}"]) from None
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return cls.model_validate(fields)
    except ValidationError as err:
        raise RecipeError(problems_from(err, data, cls, prefix)) from None


DEVICES = "cpu, cuda, cuda:N (N a GPU index) or auto"
DEVICE = re.compile(r"^(cpu|cuda|cuda:\d+|auto)$")


class Recipe(BaseModel):
    """What to compress, where to write it, and how: `Recipe.from_yaml(path)` or `Recipe(stages=[...])`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="recipe", description="shown in summaries and wandb")
    model: str | ModelSource = Field(description="a preset name, a local model directory, or an earlier artifact "
                                                 "directory; or {base: one of those, lora: a LiveAvatar-format LoRA "
                                                 "file, lora_alpha, merge}")
    output: str = Field(description="directory for this recipe's artifacts, relative to the working root")
    seed: int = 0
    device: str = Field(default="cpu", description=DEVICES)
    roots: list[str] = Field(default_factory=list, description="extra directories the recipe may read from")
    wandb_project: str = "compress"
    stages: list[Stage] = Field(min_length=1)

    _source_file: Path | None = PrivateAttr(default=None)

    @field_validator("stages", mode="before")
    @classmethod
    def _build_stages(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [item if isinstance(item, Stage) else parse_stage(item, i) for i, item in enumerate(value)]

    @field_validator("model", mode="wrap")
    @classmethod
    def _one_model_form(cls, value: Any, handler) -> str | ModelSource:
        """A mapping is a ModelSource (its own errors, not the union's two); anything else must be a name."""
        if isinstance(value, dict):
            return ModelSource.model_validate(value)
        if not isinstance(value, (str, ModelSource)):
            raise ValueError("a preset name, a model directory or an artifact, or {base: ..., lora: ...}")
        return handler(value)

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError(DEVICES)
        return value

    @model_validator(mode="after")
    def _check_stage_graph(self) -> "Recipe":
        check_stage_graph(self.stages)
        return self

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] = ()) -> "Recipe":
        from compress.recipe.loader import load_recipe

        return load_recipe(Path(path), overrides)

    @property
    def source_file(self) -> Path | None:
        return self._source_file

    def to_dict(self) -> dict:
        data = self.model_dump(mode="json", exclude={"stages"})
        data["stages"] = [{**s.config_dict(), **({"name": s.name} if s.name else {})} for s in self.stages]
        return data

    def recipe_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.display_name == name:
                return stage
        raise UserInputError(f"no stage named '{name}'; stages: {', '.join(s.display_name for s in self.stages)}")

    def check_paths(self, root: Path) -> None:
        """Every path the recipe names must stay inside the working root or a declared root, every file or folder a
        stage reads must exist, and a model folder's config.json must be sound: `recipe validate` and `run` both
        check this."""
        root = root.resolve()
        allowed = allowed_roots(root, self.roots)
        problems = []
        if not is_inside(root / self.output, [root]):
            problems.append(f"output: expected a directory inside the working root {root}; found '{self.output}'")
        elif (root / self.output).exists() and not (root / self.output).is_dir():
            problems.append(f"output: expected a directory (new or existing); found '{self.output}', a file")
        problems += self._model_path_problems(root, allowed)
        for i, stage in enumerate(self.stages):
            problems += stage.path_problems(f"stages[{i}] ({stage.display_name})", root, allowed)
        if problems:
            raise RecipeError(problems)
        self._check_model(root)

    def _model_path_problems(self, root: Path, allowed: list[Path]) -> list[str]:
        base, where = (self.model.base, "model.base") if isinstance(self.model, ModelSource) else (self.model, "model")
        paths = [(where, base)] if looks_like_path(base, root) else []
        if isinstance(self.model, ModelSource):
            paths.append(("model.lora", self.model.lora))
        problems = [p for field, value in paths if (p := outside_problem(field, value, root / value, allowed))]
        if isinstance(self.model, ModelSource) and not problems and not (root / self.model.lora).is_file():
            problems.append(f"model.lora: expected a LoRA file; found '{self.model.lora}', which does not exist")
        return problems

    def _check_model(self, root: Path) -> None:
        """The model resolves as `run` resolves it (preset, model folder or artifact); a folder's config.json is
        sound (sizes in range) before the run does any work."""
        from compress.sources import resolve

        try:
            model = resolve(self.model, root)
        except UserInputError as err:
            raise RecipeError([f"model: {err}"]) from None
        if model.kind == "directory":
            read_model_config(model.path / "config.json")

    def run(self, root: str | Path = ".", force: bool = False, from_stage: str | None = None, quiet: bool = False):
        """Run this recipe: `compress.run(recipe, ...)` (see `compress.runner.run`)."""
        from compress.runner import run  # torch

        return run(self, root, force=force, from_stage=from_stage, quiet=quiet)

