"""The log-mel audio encoder and shipped components: shapes, shifts, fitting, save / load, and which DiTs get them."""

import numpy as np
import pytest
import torch

from compress import Recipe
from compress.data.features import log_mel
from compress.models.auto import build_preset
from compress.models.demo import DEMO_CONFIG, DEMO_DIR
from compress.models.s2v import WanS2VTransformer3DModel
from compress.pipelines import ByteTokenizer, S2VComponents, flow_scheduler
from compress.pipelines.audio import audio_features
from compress.pipelines.components import shipped_components_dir, tiny_text_encoder, tiny_vae
from compress.pipelines.log_mel_audio import LogMelAudioEncoder
from compress.stages.prune import PruneStage
from compress.stages.quantize import QuantizeStage


@pytest.fixture(scope="module")
def encoder(speech):
    enc = LogMelAudioEncoder(n_mels=80, num_hidden_states=25)
    enc.fit_normalisation([log_mel(speech)])
    return enc.eval()


def test_hidden_states_are_shifted_standardised_log_mel(encoder, speech):
    states = encoder(torch.from_numpy(speech)[None], output_hidden_states=True).hidden_states
    assert len(states) == 25 and states[0].shape == (1, 1 + len(speech) // 320, 80)
    centre = states[12][0].T  # offset 0
    torch.testing.assert_close(centre.mean(1), torch.zeros(80), atol=1e-4, rtol=0)  # fitted on this speech
    torch.testing.assert_close(centre.std(1), torch.ones(80), atol=1e-4, rtol=0)
    assert list(encoder.offsets) == list(range(-12, 13))
    # state 12 + k at time t is the standardised log-mel at t + k (edges repeat the first / last step)
    torch.testing.assert_close(states[15][0, :-3], states[12][0, 3:])
    torch.testing.assert_close(states[9][0, 3:], states[12][0, :-3])
    torch.testing.assert_close(states[0][0, 0], states[12][0, 0])


def test_audio_features_runs_the_log_mel_encoder_like_wav2vec2(encoder, speech):
    feats = audio_features(encoder, speech, fps=16, num_frames=12)
    assert feats.shape == (25, 80, 12)
    assert torch.count_nonzero(feats[..., 8:]) == 0  # 0.5 s of audio: 8 frames, zeros after, as with wav2vec2
    assert feats[12, :, :8].abs().sum() > 0


def _components(encoder):
    torch.manual_seed(0)
    dit = WanS2VTransformer3DModel(**{**DEMO_CONFIG, "num_layers": 1, "audio_inject_layers": [0]})
    return S2VComponents(dit=dit, vae=tiny_vae(), text_encoder=tiny_text_encoder(DEMO_CONFIG["text_dim"]),
                         tokenizer=ByteTokenizer(), audio_encoder=encoder, scheduler=flow_scheduler())


def test_log_mel_components_save_and_load_in_preset_layout(encoder, tmp_path, speech):
    components = _components(encoder)
    dirs = components.save(tmp_path, dit_folder="")
    assert dirs["dit"] == tmp_path and (tmp_path / "config.json").is_file()
    loaded = S2VComponents.from_dirs(tmp_path, dirs["vae"], dirs["text_encoder"], dirs["audio_encoder"])
    assert isinstance(loaded.audio_encoder, LogMelAudioEncoder)
    assert torch.equal(audio_features(loaded.audio_encoder, speech, 16, 8), audio_features(encoder, speech, 16, 8))
    assert torch.equal(loaded.encode_text("a person talking"), components.encode_text("a person talking"))


def test_shipped_components_follow_the_component_interface():
    assert shipped_components_dir(DEMO_CONFIG) == DEMO_DIR
    narrower = {**DEMO_CONFIG, "num_layers": 2, "ffn_dim": 64, "audio_inject_layers": [0, 1]}  # pruned shape
    assert shipped_components_dir(narrower) == DEMO_DIR
    assert shipped_components_dir(WanS2VTransformer3DModel.from_preset("tiny", device="meta").config) is None
    assert shipped_components_dir({**DEMO_CONFIG, "audio_dim": 32}) is None


def test_tiny_components_are_unchanged_for_the_tiny_preset():
    components = S2VComponents.tiny(seed=0)
    assert type(components.audio_encoder).__name__ == "Wav2Vec2Model"
    assert components.vae.config.latents_std == tiny_vae().config.latents_std


def _assert_demo_components(components):
    assert isinstance(components.audio_encoder, LogMelAudioEncoder)
    shipped = S2VComponents.from_dirs(build_preset("demo"), *(DEMO_DIR / d for d in ("vae", "text_encoder",
                                                                                      "audio_encoder")))
    for name in ("vae", "text_encoder", "audio_encoder"):
        theirs = getattr(shipped, name).state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in getattr(components, name).state_dict().items())


@pytest.mark.slow
def test_demo_teacher_and_its_quantized_and_pruned_artifacts_get_the_shipped_components(workdir):
    recipe = Recipe(model="demo", output="runs/demo", stages=[
        QuantizeStage(name="int8", input="source", scheme="int8_weight_only"),
        PruneStage(name="depth", input="source", method="depth", target={"drop_blocks": 1}),
    ])
    result = recipe.run(quiet=True)
    for name in ("source", "int8", "depth"):
        _assert_demo_components(S2VComponents.tiny(dit=result[name].load_model(), seed=3))
    assert len(result["depth"].load_model().blocks) == DEMO_CONFIG["num_layers"] - 1
    np.testing.assert_array_equal(result["source"].load_model().proj_out.weight.detach().numpy(),
                                  build_preset("demo").proj_out.weight.detach().numpy())
