"""A small regression task for the trainer's tests: an MLP with dropout (so the RNG state matters) learns a
fixed random linear map from deterministic batches, sharded per rank."""

import torch
from torch import nn


class ToyTask:
    def __init__(self, batch_size: int = 8, dropout: float = 0.1, seed: int = 0, dim: int = 16):
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, dim))
        self.target = torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed + 1)) / dim**0.5
        self.batch_size, self.dim = batch_size, dim

    def batches(self, rank: int, world_size: int, seed: int):
        """Batch i of rank r holds rows r, r + world_size, ... of the global batch i (of batch_size * world_size)."""
        index = 0
        while True:
            gen = torch.Generator().manual_seed(seed * 100_003 + index)
            x = torch.randn(self.batch_size * world_size, self.dim, generator=gen)
            yield {"x": x[rank::world_size]}
            index += 1

    def loss(self, model, batch):
        x = batch["x"]
        loss = nn.functional.mse_loss(model(x), x @ self.target)
        return loss, {"mse": float(loss.detach())}
