"""Where DMD's networks live: one base or two, replicated (DDP) or sharded (FSDP2).

- shared-base: the generator's base is the teacher itself (`same_base`), so ONE frozen module carries two
  named adapter sets, the generator's (`default`, the set `save_adapters` writes) and the fake score's; each
  network is an `AdapterRole` that activates its set before every forward, and the real score disables both.
- two-bases: the generator's base is another model (pruned, quantized): its own module, adapters `default`; the
  teacher carries the fake score's. Both layouts name every parameter alike, so checkpoints move between them.
- sharding `fsdp` under torchrun: `fully_shard` (FSDP2) on every DiT block, then on each base's root, frozen
  weights and LoRA together; the trained adapters' parameters and AdamW moments are DTensors, checkpointed whole
  (`full`, `whole_optimizer_state`) so a resume or the artifact does not depend on the layout.
- `checkpoint_blocks`: activation checkpointing of the DiT blocks, each recomputed with the adapter set that ran it.

    generator, scores, view = dmd_networks(base, teacher, config)  # base is teacher: shared-base
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from compress.distill.config import DmdConfig
from compress.distill.lora_adapters import (
    DEFAULT_ADAPTER,
    AdapterView,
    activate_adapter,
    active_adapter,
    attach_adapters,
)

GENERATOR, FAKE_SCORE = DEFAULT_ADAPTER, "fake_score"
SHARED_BASE, TWO_BASES = "shared-base", "two-bases"


class AdapterRole(nn.Module):
    """One network of DMD: `base` running its adapter set `adapter` (other sets on the same base stay idle)."""

    def __init__(self, base: nn.Module, adapter: str):
        super().__init__()
        self.base, self.adapter = base, adapter

    @property
    def config(self):
        return self.base.config

    def forward(self, *args, **kwargs):
        activate_adapter(self.base, self.adapter)
        return self.base(*args, **kwargs)

    def trained(self) -> dict[str, nn.Parameter]:
        """This role's adapter parameters, by name (the same in either layout)."""
        marker = f".{self.adapter}."
        return {name: p for name, p in self.named_parameters() if "lora_" in name and marker in name}


def dmd_networks(generator_base: nn.Module, teacher: nn.Module, config: DmdConfig, generator_quant=None,
                 teacher_quant=None) -> tuple[AdapterRole, AdapterRole, AdapterView]:
    """The generator and the scores: generator adapters on `generator_base`, fake-score adapters on `teacher`
    (one module for both: shared-base), attached in this order so the adapters start alike in either layout."""
    view = attach_adapters(generator_base, config.targets, config.rank, config.alpha or config.rank, 0.0,
                           generator_quant, adapter_name=GENERATOR)
    fake_rank = config.fake_rank or config.rank
    attach_adapters(teacher, config.targets, fake_rank, fake_rank, 0.0, teacher_quant, adapter_name=FAKE_SCORE)
    return AdapterRole(generator_base, GENERATOR), AdapterRole(teacher.eval(), FAKE_SCORE), view


def layout_of(generator: AdapterRole, scores: AdapterRole) -> str:
    return SHARED_BASE if generator.base is scores.base else TWO_BASES


def same_base(source_artifact, teacher_artifact) -> bool:
    """Whether the generator's input is the teacher itself: the same artifact, or one loading the same model
    directory (a pruned or quantized input is another artifact with weights of its own)."""
    if source_artifact.hash == teacher_artifact.hash:
        return True
    dirs = (source_artifact.model_dir, teacher_artifact.model_dir)
    return None not in dirs and dirs[0].resolve() == dirs[1].resolve()


def _bases(roles: tuple[AdapterRole, ...]) -> list[nn.Module]:
    return list({id(role.base): role.base for role in roles}.values())


def checkpoint_blocks(*roles: AdapterRole) -> None:
    """Activation checkpointing of every DiT block of the roles' bases (the model's gradient_checkpointing)."""
    for base in _bases(roles):
        base.enable_gradient_checkpointing(gradient_checkpointing_func=_checkpointed)


def _checkpointed(block: nn.Module, *args):
    """One block under torch's checkpoint, recomputed in the backward with the adapter set that ran it: on a shared
    base another role's set is active by then (the scores run while the generator's graph is held)."""
    from torch.utils.checkpoint import checkpoint

    adapter = active_adapter(block)

    def run(*inputs):
        if adapter is not None:
            activate_adapter(block, adapter)
        return block(*inputs)

    return checkpoint(run, *args, use_reentrant=False)


def shard_bases(*roles: AdapterRole) -> None:
    """FSDP2 over all ranks: every DiT block a unit, then each distinct base's root (the rest of its weights)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(next(roles[0].parameters()).device.type, (dist.get_world_size(),))
    for base in _bases(roles):
        for block in base.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(base, mesh=mesh)


def full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP2 shard (a collective: every rank calls it), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def like(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A whole tensor laid out as `param` is: this rank's shard of it for an FSDP2 parameter."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    if isinstance(param, DTensor) and value.shape == param.shape:
        return distribute_tensor(value.to(param.device), param.device_mesh, param.placements)
    return value


def whole_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """`optimizer.state_dict()` with every sharded moment gathered whole (every rank calls it)."""
    state = optimizer.state_dict()
    return {**state, "state": {i: {k: full(v) if isinstance(v, torch.Tensor) else v for k, v in s.items()}
                               for i, s in state["state"].items()}}


def load_whole_optimizer_state(optimizer: torch.optim.Optimizer, state: dict, params: list[nn.Parameter]) -> None:
    """Load what `whole_optimizer_state` saved into an optimizer over `params` (sharded or not)."""
    sharded = {i: {k: like(v, params[i]) if isinstance(v, torch.Tensor) else v for k, v in s.items()}
               for i, s in state["state"].items()}
    optimizer.load_state_dict({**state, "state": sharded})
