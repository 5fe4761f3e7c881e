import numpy as np
import pytest

from compress.data import IDENTITIES, face_image, get_identity


@pytest.mark.parametrize("size", [64, 96, 128, 256])
def test_identities_at_any_size(size):
    images = [identity.image(size) for identity in IDENTITIES]
    assert len(images) >= 3
    for img in images:
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i].astype(int) - images[j]).mean() > 3


def test_mouth_box_inside_crop_and_scales():
    for identity in IDENTITIES:
        box = identity.mouth_box
        assert 0.3 < box.cx < 0.7 and 0.5 < box.cy < 0.8 and 0.05 < box.half_width < 0.2
    assert face_image("astronaut", 64).shape == (64, 64, 3)
    with pytest.raises(KeyError):
        get_identity("nobody")
