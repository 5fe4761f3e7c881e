"""Input sets: offline speech (espeak-ng), reference faces and the synthetic talking-face set."""

from .faces import IDENTITIES, IDENTITY_NAMES, Identity, MouthBox, face_image, get_identity
from .faults import DEFAULT_FAULTS, Fault, apply_fault, blur, frozen, scale_amplitude, shift
from .features import frame_features, log_mel, mel_filterbank
from .speech import (SENTENCES, VOICES, Speech, espeak_available, mouth_schedule, mouth_target,
                      split_sentences, synthesize)
from .synthetic import build_synthetic_set, load_synthetic_set
from .talking import DEFAULT_MOUTH_BOX, mouth_opening_measure, render_talking_clip

__all__ = [
    "DEFAULT_FAULTS", "DEFAULT_MOUTH_BOX", "Fault", "IDENTITIES", "IDENTITY_NAMES", "Identity", "MouthBox",
    "SENTENCES", "Speech", "VOICES", "apply_fault", "blur", "build_synthetic_set", "espeak_available",
    "face_image", "frame_features", "frozen", "get_identity", "load_synthetic_set", "log_mel",
    "mel_filterbank", "mouth_opening_measure", "mouth_schedule", "mouth_target", "render_talking_clip",
    "scale_amplitude", "shift", "split_sentences", "synthesize",
]
