"""Artifact directories: atomic writing, locking, hashing, manifests and model cards."""

from compress.artifacts.artifact import Artifact, ArtifactWriter, remove_partials
from compress.artifacts.lock import OutputLock

__all__ = ["Artifact", "ArtifactWriter", "OutputLock", "remove_partials"]
