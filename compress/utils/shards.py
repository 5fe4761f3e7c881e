"""Writing sharded safetensors checkpoints with one tensor in memory at a time.

Each tensor's bytes go straight to a spill file as it arrives; when a shard is full its header is
written and the spill is copied behind it. Memory stays at one tensor whatever the shard size.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
           torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.int64: "I64", torch.int32: "I32",
           torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


class _Shard:
    def __init__(self, spill: Path):
        self.spill_path = spill
        self.spill = open(spill, "wb")
        self.entries: dict[str, dict] = {}
        self.nbytes = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
        self.spill.write(memoryview(data))
        self.entries[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                              "data_offsets": [self.nbytes, self.nbytes + data.nbytes]}
        self.nbytes += data.nbytes

    def finish(self, path: Path) -> None:
        self.spill.close()
        header = json.dumps({"__metadata__": {"format": "pt"}, **self.entries}, separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as out, open(self.spill_path, "rb") as spill:
            out.write(len(header).to_bytes(8, "little"))
            out.write(header)
            shutil.copyfileobj(spill, out, 16 << 20)
        self.spill_path.unlink()


class ShardedWriter:
    """`add(name, tensor)` then `close()`: `{stem}.safetensors`, or numbered shards plus an index JSON."""

    def __init__(self, directory: Path, stem: str, max_shard_bytes: int):
        self.directory, self.stem, self.max_shard_bytes = Path(directory), stem, max_shard_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self.done: list[_Shard] = []
        self.current = self._new_shard()

    def _new_shard(self) -> _Shard:
        return _Shard(self.directory / f".{self.stem}-{len(self.done):05d}.spill")

    def add(self, name: str, tensor: torch.Tensor) -> int:
        nbytes = tensor.numel() * tensor.element_size()
        if self.current.entries and self.current.nbytes + nbytes > self.max_shard_bytes:
            self.done.append(self.current)
            self.current = self._new_shard()
        self.current.add(name, tensor)
        return nbytes

    def close(self) -> list[Path]:
        shards = [*self.done, self.current]
        if len(shards) == 1:
            path = self.directory / f"{self.stem}.safetensors"
            shards[0].finish(path)
            return [path]
        paths, weight_map = [], {}
        for i, shard in enumerate(shards, start=1):
            paths.append(self.directory / f"{self.stem}-{i:05d}-of-{len(shards):05d}.safetensors")
            shard.finish(paths[-1])
            weight_map.update(dict.fromkeys(shard.entries, paths[-1].name))
        index = {"metadata": {"total_size": sum(s.nbytes for s in shards)}, "weight_map": weight_map}
        (self.directory / f"{self.stem}.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        return paths
