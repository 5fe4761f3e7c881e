"""Wan2.2-S2V DiT (upstream `WanModel_S2V`, framepack / AdaIN release variant) as a diffusers model."""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.embeddings import PixArtAlphaTextProjection, TimestepEmbedding
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from torch import nn

from ...errors import UserInputError
from ..config_check import read_model_config
from ..loading import CONFIG_NAME, CheckpointError, cast_model, load_weights, write_checkpoint
from .audio import AudioInjector, CausalAudioEncoder
from .chunks import DEFAULT_CHUNK_SIZE, add_residual, fill, spans
from .keymap import from_official_config, is_official_config, native_to_ours, ours_to_native, to_official_config
from .inputs import example_inputs
from .layers import TransformerBlock
from .motion import MOTION_FRAMES, FramePackMotioner
from .presets import RELEASE_INJECT_LAYERS, get_preset_config
from .rope import axis_dims, grid, rope_cos_sin, rope_table

PATCH_SIZE = (1, 2, 2)
REF_ROPE_TIME = 30  # temporal RoPE index of the reference frame
MEMORY_MODES = ("lean", "plain")


def sinusoidal_embedding(dim: int, t: torch.Tensor) -> torch.Tensor:
    """[cos, sin] timestep embedding computed in float64 (as upstream), returned as float32."""
    half = dim // 2
    t = t.to(torch.float64)
    angles = torch.outer(t, torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=t.device).div(half)))
    return torch.cat([angles.cos(), angles.sin()], dim=1).float()


def _dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


class ConditionEmbedder(nn.Module):
    def __init__(self, dim: int, freq_dim: int, text_dim: int):
        super().__init__()
        self.time_embedder = TimestepEmbedding(freq_dim, dim)
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.text_embedder = PixArtAlphaTextProjection(text_dim, dim, act_fn="gelu_tanh")


class WanS2VTransformer3DModel(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """Speech-to-video DiT: noisy video + pose + reference frame + FramePack motion tokens, text
    cross-attention, and audio injected after `audio_inject_layers` (exact block indices)."""

    _supports_gradient_checkpointing = True
    _no_split_modules = ["TransformerBlock"]
    _keep_in_fp32_modules = ["time_embedder", "time_proj", "scale_shift_table", "norm2", "proj_out", "audio_encoder"]
    # Linear layers that quantization keeps in high precision by default (LiveAvatar's FP8 recipe, our names)
    _keep_in_high_precision = ["condition_embedder.*", "proj_out", "audio_encoder.final_linear"]
    example_inputs = example_inputs
    onnx_export_refusal = ("the S2V DiT is no device model (tracing it takes minutes, and no phone runs it); export "
                           "a student distilled from it: lipsync-30m, lipsync-120m or tiny-vae-decoder")

    @register_to_config
    def __init__(
        self,
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        pose_channels: int = 16,
        text_dim: int = 4096,
        text_len: int = 512,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        eps: float = 1e-6,
        audio_dim: int = 1024,
        num_audio_layers: int = 25,
        num_audio_tokens: int = 4,
        audio_inject_layers: list[int] | tuple[int, ...] = RELEASE_INJECT_LAYERS,
        attention_heads: int | None = None,
        audio_attention_heads: int | None = None,
    ):
        """The residual width is num_attention_heads * attention_head_dim. `attention_heads` (blocks' self- and
        text cross-attention) and `audio_attention_heads` (audio injectors) are the heads kept after head
        pruning, each attention_head_dim wide; None means num_attention_heads."""
        super().__init__()
        axis_dims(attention_head_dim)
        inject = list(audio_inject_layers)
        if inject != sorted(set(inject)) or any(not 0 <= i < num_layers for i in inject):
            raise ValueError(f"audio_inject_layers must be increasing block indices in [0, {num_layers}), got {inject}")
        for name, heads in (("attention_heads", attention_heads), ("audio_attention_heads", audio_attention_heads)):
            if heads is not None and not 1 <= heads <= num_attention_heads:
                raise ValueError(f"{name} must be in [1, {num_attention_heads}], got {heads}")
        dim = num_attention_heads * attention_head_dim

        self.patch_embedding = nn.Conv3d(in_channels, dim, PATCH_SIZE, stride=PATCH_SIZE)
        self.pose_embedding = nn.Conv3d(pose_channels, dim, PATCH_SIZE, stride=PATCH_SIZE)
        self.frame_packer = FramePackMotioner(in_channels, dim)
        self.segment_embedding = nn.Embedding(3, dim)
        self.condition_embedder = ConditionEmbedder(dim, freq_dim, text_dim)
        self.audio_encoder = CausalAudioEncoder(audio_dim, num_audio_layers, dim, num_audio_tokens)
        self.blocks = nn.ModuleList(
            [TransformerBlock(dim, ffn_dim, attention_heads or num_attention_heads, eps, attention_head_dim)
             for _ in range(num_layers)]
        )
        self.audio_injectors = nn.ModuleList(
            [AudioInjector(dim, audio_attention_heads or num_attention_heads, eps, attention_head_dim) for _ in inject]
        )
        self.injector_of_block = {block: i for i, block in enumerate(inject)}
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_channels * PATCH_SIZE[0] * PATCH_SIZE[1] * PATCH_SIZE[2])
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)
        self.gradient_checkpointing = False
        self.memory_mode, self.ffn_chunk_size = "lean", DEFAULT_CHUNK_SIZE
        self._init_weights()

    def _init_weights(self) -> None:
        """Upstream init with zero_init=True; modules upstream leaves at PyTorch defaults stay so. Unlike
        upstream, the output projection is not zeroed, so randomly initialised presets give non-trivial outputs."""
        for module in [*self.blocks.modules(), *self.condition_embedder.modules(), self.proj_out]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.flatten(1))
        for embedder in (self.condition_embedder.text_embedder, self.condition_embedder.time_embedder):
            for module in embedder.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=0.02)
        for tensor in (self.pose_embedding.weight, self.pose_embedding.bias, self.segment_embedding.weight):
            nn.init.zeros_(tensor)
        for injector in self.audio_injectors:
            injector.zero_init()

    def parameter_breakdown(self) -> dict[str, int]:
        """Parameter counts of the plain Wan backbone and of each S2V extra (works on the meta device)."""
        parts = {"backbone": 0, "audio_injector_attention": 0, "audio_injector_adaln": 0, "audio_encoder": 0,
                 "frame_packer": 0, "pose_and_segment_embedding": 0}
        for name, p in self.named_parameters():
            top = name.split(".")[0]
            if top == "audio_injectors":
                part = "audio_injector_attention" if name.split(".")[2] == "attn" else "audio_injector_adaln"
            elif top in ("pose_embedding", "segment_embedding"):
                part = "pose_and_segment_embedding"
            else:
                part = top if top in parts else "backbone"
            parts[part] += p.numel()
        return parts

    # ---- construction and I/O ------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, name: str, device=None, dtype: torch.dtype | None = None) -> WanS2VTransformer3DModel:
        """Randomly initialised model of a named preset; device="meta" allocates nothing. dtype casts all
        parameters except `_keep_in_fp32_modules`."""
        with torch.device(device) if device is not None else contextlib.nullcontext():
            model = cls(**get_preset_config(name))
        return model if dtype is None else cast_model(model, dtype, cls._keep_in_fp32_modules)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path, *, subfolder: str | None = None,
        torch_dtype: torch.dtype | None = None, device: str | torch.device = "cpu",
    ) -> WanS2VTransformer3DModel:
        """Load a local directory in the official layout (upstream config.json, native keys) or the layout
        written by `save_pretrained`; single-file or sharded. Streams tensors into a meta-built model.
        torch_dtype None keeps the stored dtypes; otherwise `_keep_in_fp32_modules` stay float32."""
        directory = Path(pretrained_model_name_or_path) / (subfolder or "")
        raw = read_model_config(directory / CONFIG_NAME)  # checked: sizes in range, buildable
        if raw.get("_class_name") == cls.__name__:
            config, to_model, to_stored = cls._config_from_saved(raw, directory), (lambda k: k), (lambda k: k)
        elif is_official_config(raw):
            config, to_model, to_stored = from_official_config(raw), native_to_ours, ours_to_native
        else:
            raise CheckpointError(f"{directory / 'config.json'}: neither a {cls.__name__} nor a WanModel_S2V config")
        with torch.device("meta"):
            model = cls(**config)
        return load_weights(model, directory, to_model, to_stored, torch_dtype, device, cls._keep_in_fp32_modules)

    @classmethod
    def _config_from_saved(cls, raw: dict, directory: Path) -> dict:
        params = inspect.signature(cls.__init__).parameters
        unknown = sorted(k for k in raw if not k.startswith("_") and k not in params)
        if unknown:
            raise CheckpointError(f"{directory / 'config.json'}: unknown config keys {unknown}")
        return {k: v for k, v in raw.items() if k in params}

    def save_official(self, directory, max_shard_size: int | str = "10GB", dtype: torch.dtype | None = None):
        """Write the official layout: native key names, upstream-format config.json, shards of at most
        max_shard_size (one file if it fits) with an index. dtype casts floating tensors on the way out.
        Parameters on the meta device are written as random N(0, 0.02) values, one shard in memory at a
        time, so a full-size checkpoint can be produced for benchmarks without materialising the model."""
        generator = torch.Generator().manual_seed(0)

        def tensors():
            for name, tensor in self.state_dict().items():
                if tensor.is_meta:
                    tensor = torch.randn(tensor.shape, generator=generator).mul_(0.02).to(tensor.dtype)
                cast = dtype is not None and tensor.is_floating_point()
                yield ours_to_native(name), tensor.to(dtype) if cast else tensor

        return write_checkpoint(Path(directory), tensors(), to_official_config(self.config), max_shard_size)

    # ---- forward -------------------------------------------------------------------------------------

    def set_memory_mode(self, mode: str = "lean", ffn_chunk_size: int | None = None) -> WanS2VTransformer3DModel:
        """How the forward spends activation memory (the outputs are the same). "lean" (default): RoPE as
        float32 cos/sin, token-wise work (projections, attention queries, FFN, head) in spans of
        `ffn_chunk_size` tokens, audio injectors over as many whole latent frames, residuals added in place
        when autograd is off. "plain": upstream's behaviour, with its complex128 per-head RoPE table and every
        block intermediate referenced until the block returns (the baseline the planner compares with)."""
        if mode not in MEMORY_MODES:
            raise UserInputError(f"memory mode: expected one of {', '.join(MEMORY_MODES)}; found {mode!r}")
        if ffn_chunk_size is not None and (isinstance(ffn_chunk_size, bool) or not isinstance(ffn_chunk_size, int)
                                           or ffn_chunk_size < 1):
            raise UserInputError(f"ffn_chunk_size: expected a positive number of tokens; found {ffn_chunk_size!r}")
        self.memory_mode = mode
        self.ffn_chunk_size = ffn_chunk_size or self.ffn_chunk_size
        return self

    @contextlib.contextmanager
    def using_memory_mode(self, mode: str, ffn_chunk_size: int | None = None):
        """set_memory_mode for the duration of a `with` block, then the previous settings again."""
        previous = self.memory_mode, self.ffn_chunk_size
        self.set_memory_mode(mode, ffn_chunk_size)
        try:
            yield self
        finally:
            self.memory_mode, self.ffn_chunk_size = previous

    def _check_inputs(self, hidden_states, timestep, text, audio, ref, motion, pose) -> None:
        cfg = self.config
        if hidden_states.ndim != 5 or hidden_states.shape[1] != cfg.in_channels:
            raise ValueError(f"hidden_states must be [B, {cfg.in_channels}, F, H, W], got {tuple(hidden_states.shape)}")
        b, _, frames, height, width = hidden_states.shape
        if height % PATCH_SIZE[1] or width % PATCH_SIZE[2]:
            raise ValueError(f"latent height and width must be even, got {height}x{width}")
        if timestep.numel() not in (1, b):
            raise ValueError(f"timestep must have 1 or {b} entries, got shape {tuple(timestep.shape)}")
        if text.ndim != 3 or text.shape[0] != b or text.shape[2] != cfg.text_dim or text.shape[1] > cfg.text_len:
            raise ValueError(
                f"encoder_hidden_states must be [{b}, L <= {cfg.text_len}, {cfg.text_dim}], got {tuple(text.shape)}"
            )
        want = (b, cfg.num_audio_layers, cfg.audio_dim)
        if audio.ndim != 4 or tuple(audio.shape[:3]) != want:
            raise ValueError(f"audio_features must be [{', '.join(map(str, want))}, T], got {tuple(audio.shape)}")
        if audio.shape[3] != 4 * frames:
            raise ValueError(
                f"audio_features has {audio.shape[3]} time steps; it must have 4 x latent frames = {4 * frames}"
            )
        shapes = {"ref_latents": (ref, (b, cfg.in_channels, 1, height, width)),
                  "pose_latents": (pose, (b, cfg.pose_channels, frames, height, width))}
        if motion is not None:
            shapes["motion_latents"] = (motion, (b, cfg.in_channels, motion.shape[2], height, width))
        for name, (tensor, shape) in shapes.items():
            if tensor is not None and tuple(tensor.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")

    def _time_embedding(self, timestep: torch.Tensor, batch: int):
        """temb [B, D] for the head and block modulation [B, 6, 2, D]: the real t for noisy tokens and
        t = 0 for reference and motion tokens (upstream zero_timestep)."""
        emb = self.condition_embedder
        t = timestep.reshape(-1).expand(batch)
        sin = sinusoidal_embedding(self.config.freq_dim, torch.cat([t, t.new_zeros(1)]))
        temb = emb.time_embedder(sin.to(_dtype(emb.time_embedder))).float()
        e0 = emb.time_proj(F.silu(temb).to(_dtype(emb.time_proj))).float().unflatten(1, (6, -1))
        return temb[:batch], torch.stack([e0[:batch], e0[batch:].expand(batch, -1, -1)], dim=2)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        audio_features: torch.Tensor,
        ref_latents: torch.Tensor,
        motion_latents: torch.Tensor | None = None,
        pose_latents: torch.Tensor | None = None,
        return_dict: bool = True,
        drop_motion_frames: bool = False,
    ):
        """hidden_states [B, C, F, H, W] noisy latents; timestep [B]; encoder_hidden_states [B, L <= text_len,
        text_dim] (zero-padded to text_len, padding not masked); audio_features [B, num_audio_layers, audio_dim,
        4F]; ref_latents [B, C, 1, H, W]; motion_latents [B, C, M, H, W] (last 19 used, zeros if None);
        pose_latents [B, pose_channels, F, H, W] (zeros if None). drop_motion_frames omits the motion tokens
        (upstream does so for the first clip). Returns the prediction [B, out_channels, F, H, W]."""
        timestep = torch.as_tensor(timestep, device=hidden_states.device)
        self._check_inputs(hidden_states, timestep, encoder_hidden_states, audio_features, ref_latents,
                           motion_latents, pose_latents)
        b, _, _, height, width = hidden_states.shape
        dtype = _dtype(self.patch_embedding)
        head_dim = self.config.attention_head_dim

        # audio: the causal encoder also sees the motion window (upstream pads 73 = 4 * 19 - 3 steps)
        audio_global, audio_tokens = self.audio_encoder(audio_features, pad_frames=4 * MOTION_FRAMES - 3)
        audio_global, audio_tokens = audio_global[:, MOTION_FRAMES:], audio_tokens[:, MOTION_FRAMES:].to(dtype)

        # tokens: noisy (+ pose), reference frame, motion history; RoPE positions alongside
        x = self.patch_embedding(hidden_states.to(dtype))
        if pose_latents is None:  # the pose encoder applied to zeros
            x = x + self.pose_embedding.bias.to(dtype).view(1, -1, 1, 1, 1)
        else:
            x = x + self.pose_embedding(pose_latents.to(dtype))
        grid_f, grid_h, grid_w = x.shape[2:]
        x = x.flatten(2).transpose(1, 2)
        ref = self.patch_embedding(ref_latents.to(dtype)).flatten(2).transpose(1, 2)
        parts = [x, ref]
        rows, cols = range(grid_h), range(grid_w)
        positions = [grid(range(grid_f), rows, cols), grid([REF_ROPE_TIME], rows, cols)]
        if not drop_motion_frames:
            if motion_latents is None:
                motion_latents = hidden_states.new_zeros(b, self.config.in_channels, MOTION_FRAMES, height, width)
            parts.append(self.frame_packer(motion_latents.to(dtype)))
            positions.append(self.frame_packer.positions(height, width))
        num_noisy = x.shape[1]
        # learned segment embedding: 0 noisy, 1 reference, 2 motion tokens
        segments = torch.repeat_interleave(torch.arange(len(parts), device=x.device),
                                           torch.tensor([p.shape[1] for p in parts], device=x.device))
        x = torch.cat(parts, dim=1)
        del parts, ref
        x = x.add_(self.segment_embedding(segments).to(x.dtype)).float()
        positions = torch.cat(positions)
        if self.memory_mode == "lean":
            rope, chunk = rope_cos_sin(positions, head_dim, device=x.device), self.ffn_chunk_size
        else:
            rope, chunk = rope_table(positions, head_dim, b, self.blocks[0].attn1.num_heads, x.device), None

        temb, temb_blocks = self._time_embedding(timestep, b)
        text = encoder_hidden_states.to(_dtype(self.condition_embedder.text_embedder))
        text = F.pad(text, (0, 0, 0, self.config.text_len - text.shape[1]))
        context = self.condition_embedder.text_embedder(text).to(dtype)

        for index, block in enumerate(self.blocks):
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, temb_blocks, num_noisy, context, rope, chunk)
            else:
                x = block(x, temb_blocks, num_noisy, context, rope, chunk)
            injector = self.injector_of_block.get(index)
            if injector is not None:
                x = self._inject(self.audio_injectors[injector], x, num_noisy, audio_global, audio_tokens, chunk)

        # head on the noisy tokens only
        shift, scale = (self.scale_shift_table.float() + temb.unsqueeze(1)).chunk(2, dim=1)
        head_dtype = _dtype(self.proj_out)
        out, = fill(spans(num_noisy, chunk),
                    lambda s, e: (self.proj_out((self.norm_out(x[:, s:e]) * (1 + scale) + shift).to(head_dtype)),))
        pt, ph, pw = PATCH_SIZE
        out = out.reshape(b, grid_f, grid_h, grid_w, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        out = out.reshape(b, -1, grid_f * pt, grid_h * ph, grid_w * pw).to(hidden_states.dtype)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)

    @staticmethod
    def _inject(injector, x, num_noisy, audio_global, audio_tokens, chunk):
        """x with an audio injector's residual added to its noisy tokens, `chunk` tokens' worth of whole latent
        frames at a time (all of them when chunk is None)."""
        frames = audio_tokens.shape[1]
        per_frame = num_noisy // frames
        step = max(1, (chunk or num_noisy) // per_frame)
        ranges = [(f * per_frame, min(f + step, frames) * per_frame) for f in range(0, frames, step)]
        return add_residual(x, ranges, lambda h, s, e: injector(h, audio_global[:, s // per_frame : e // per_frame],
                                                              audio_tokens[:, s // per_frame : e // per_frame]))
