"""What a running stage may use besides its input: earlier artifacts, the device, progress, paths.

The runner builds one `StageContext` per run; stages only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Protocol

from compress.artifacts import Artifact
from compress.errors import UserInputError
from compress.utils.console import Console
from compress.utils.paths import resolve_within

if TYPE_CHECKING:
    import torch

    from compress.reference import ReferenceArtifact


class RecipeSettings(Protocol):
    """The recipe fields a stage may read (a `compress.recipe.Recipe` has them)."""

    model: str
    roots: list[str]


@dataclass
class StageContext:
    recipe: RecipeSettings
    root: Path
    output_dir: Path
    artifacts: dict[str, Artifact]
    device: "torch.device"
    console: Console
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    _references: dict = field(default_factory=dict, repr=False)

    def barrier(self) -> None:
        """Wait for every rank (a no-op without torchrun)."""
        from compress.distributed import barrier  # torch

        barrier()

    def artifact(self, name: str) -> Artifact:
        if name not in self.artifacts:
            raise UserInputError(f"no finished artifact named '{name}'; have: {', '.join(self.artifacts)}")
        return self.artifacts[name]

    def reference(self, name: str, max_inputs: int | None = None) -> "ReferenceArtifact":
        """The finished reference stage `name`, opened once per run (its first `max_inputs` inputs)."""
        from compress.reference import ReferenceArtifact  # datasets, torch

        key = (name, max_inputs)
        if key not in self._references:
            self._references[key] = ReferenceArtifact(self.artifact(name), self, max_inputs)
        return self._references[key]

    def track(self, iterable: Iterable, description: str, total: int | None = None) -> Iterable:
        return self.console.track(iterable, description, total)

    def log(self, message: str) -> None:
        self.console.log(message)

    def resolve_path(self, value: str) -> Path:
        """A path named in the recipe, refused if it leaves the working root and the declared roots."""
        return resolve_within(self.root, self.recipe.roots, value)
