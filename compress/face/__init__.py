"""Face measurement primitives, shared by distillation and evaluation: face-mesh landmarks (`landmarks`, a
MediaPipe worker in its own environment), mouth geometry on them (`mouth`), mouth crops stacked into sync windows
(`crops`), SyncNet's MFCC input (`mfcc`) and the talking clip that lip-sync models score (`sync_clip`).

Import the modules themselves: `landmarks` and `mouth` need only numpy, `crops` and `mfcc` need torch."""
