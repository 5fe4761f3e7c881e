"""Lip-sync tiers B (a sync expert trained by the toolkit on teacher outputs) and C (the published SyncNet,
user-supplied weights), both scored with the SyncNet protocol (`protocol.sync_scores`)."""

from .expert import offset_accuracy, train_sync_expert
from .protocol import sync_scores
from .syncnet import SyncNet, load_syncnet
from .tiers import NO_WEIGHTS, compare_to_teacher, tier_b_clip, tier_c_clip

__all__ = ["NO_WEIGHTS", "SyncNet", "compare_to_teacher", "load_syncnet", "offset_accuracy", "sync_scores",
           "tier_b_clip", "tier_c_clip", "train_sync_expert"]
