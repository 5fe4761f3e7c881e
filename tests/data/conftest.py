import numpy as np
import pytest

from compress.data import IDENTITIES, mouth_schedule, render_talking_clip, synthesize


@pytest.fixture(scope="session")
def talking():
    """A 64-frame espeak (or tone) clip of the first identity at 64 px: (face, schedule, frames, box)."""
    identity = IDENTITIES[0]
    speech = synthesize("Please bring the map back to the boat.", "en-us", 140).fit(0.25, 4.0)
    schedule = mouth_schedule(speech, 16, 64)
    face = identity.image(64)
    return face, schedule, render_talking_clip(face, schedule, identity.mouth_box), identity.mouth_box

