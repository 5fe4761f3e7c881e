"""Distillation: the training loop (`trainer`), losses, reference-data streams and student tasks, LoRA recovery.

Submodules are imported where used (`from compress.distill.trainer import TrainConfig, train`), so importing
this package stays light.
"""
