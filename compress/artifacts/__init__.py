"""Artifact directories: atomic writing, locking, hashing, manifests and model cards."""

from compress.artifacts.artifact import Artifact, ArtifactWriter, DamagedArtifactError, remove_partials
from compress.artifacts.lock import OutputLock

__all__ = ["Artifact", "ArtifactWriter", "DamagedArtifactError", "OutputLock", "remove_partials"]
