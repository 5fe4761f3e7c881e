"""What to prune and how much: the typed configuration shared by `plan_prune`, the stage and the CLI."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

PruneMethod = Literal["depth", "width", "sparse_2_4"]
WidthPart = Literal["ffn", "heads", "audio_heads"]

_COUNTS = {"depth": ("blocks", "drop_blocks"), "width": ("ffn_dim", "heads", "audio_heads")}


class PruneTarget(BaseModel):
    """How much to remove: counts, a ratio, or a parameter budget (exactly one kind)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: int | None = Field(default=None, ge=1, description="depth: transformer blocks to keep")
    drop_blocks: int | None = Field(default=None, ge=1, description="depth: transformer blocks to remove")
    ffn_dim: int | None = Field(default=None, ge=1, description="width: FFN channels kept in every block")
    heads: int | None = Field(default=None, ge=1, description="width: heads kept in each block's self/text attention")
    audio_heads: int | None = Field(default=None, ge=1, description="width: heads kept in each audio injector")
    ratio: float | None = Field(default=None, gt=0, lt=1,
                                description="fraction removed: of the blocks (depth), of the FFN channels and "
                                            "heads named by `parts` (width)")
    params: float | None = Field(default=None, gt=0,
                                 description="parameter budget: the largest structure with at most this many")

    @model_validator(mode="after")
    def _one_kind(self) -> PruneTarget:
        given = list(self.given())
        kinds = {"count" if k in _COUNTS["depth"] + _COUNTS["width"] else k for k in given}
        if len(kinds) != 1 or {"blocks", "drop_blocks"} <= set(given):
            raise ValueError(f"exactly one of blocks, drop_blocks, ratio, params, or width counts (ffn_dim, heads, "
                             f"audio_heads); got {', '.join(given) or 'none'}")
        return self

    @model_serializer(mode="wrap")
    def _given_only(self, handler) -> dict:
        """Serialise only the fields that are set, so recipes and manifests read as written."""
        return {k: v for k, v in handler(self).items() if v is not None}

    def given(self) -> dict:
        return self.model_dump()


class PruneConfig(BaseModel):
    """`method` with its `target`; method-specific options are ignored by the other methods."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    method: PruneMethod = Field(description="depth: drop whole blocks; width: FFN channels and attention heads; "
                                            "sparse_2_4: zero 2 of every 4 weights (sparse, not smaller)")
    target: PruneTarget | None = Field(default=None, validate_default=True,
                                       description="how much to remove (none for sparse_2_4)")
    injectors_on_dropped_blocks: Literal["drop", "nearest"] = Field(
        default="drop", description="depth: an audio injector after a dropped block goes with it, or moves to the "
                                    "nearest surviving block (earlier on a tie) if that block has none")
    depth_importance: Literal["ablation", "cosine"] = Field(
        default="ablation", description="depth: how calibration scores a block: ablation, the model's output error "
                                        "without it (one forward per block and input); cosine, 1 - cos(block input, "
                                        "block output) (ShortGPT; one forward per input, a rougher proxy)")
    parts: list[WidthPart] = Field(default_factory=lambda: ["ffn", "heads"], min_length=1,
                                   description="width: what a ratio or params target shrinks; count targets "
                                               "shrink the parts they name")
    targets: list[str] = Field(default_factory=lambda: ["blocks.*"],
                               description="sparse_2_4: Linear modules to sparsify (globs)")
    ignore: list[str] = Field(default_factory=list, description="sparse_2_4: Linear modules left dense (globs)")

    @field_validator("target")
    @classmethod
    def _target_fits_method(cls, target: PruneTarget | None, info: ValidationInfo) -> PruneTarget | None:
        method = info.data.get("method")
        if method == "sparse_2_4":
            if target is not None:
                raise ValueError("no target for sparse_2_4 (it always keeps 2 of every 4 weights)")
            return target
        if target is None:
            raise ValueError(f"a target for method {method}, e.g. {{ratio: 0.2}}")
        wrong = [k for k in target.given() if k in _COUNTS["depth" if method == "width" else "width"]]
        if wrong:
            raise ValueError(f"target fields for method {method}; {', '.join(wrong)} belongs to the other method")
        return target
