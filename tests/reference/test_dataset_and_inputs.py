"""Array columns round-trip exactly; input sets from YAML / CSV; their fingerprint follows the listed files."""

import numpy as np
import pytest

from compress.errors import UserInputError
from compress.reference.dataset import array_features, load_rows, save_rows
from compress.reference.inputs import input_set_fingerprint, read_input_set
from compress.utils.arrays import decode_array, encode_array


def test_arrays_round_trip_through_a_saved_dataset(tmp_path):
    arrays = {"a": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "b": np.full((0, 5), 7, np.uint8),
              "c": np.array(3.5, np.float64)}
    row = {k: v for name, a in arrays.items() for k, v in encode_array(a, name).items()}
    save_rows([row, row], array_features(*arrays), tmp_path / "ds")
    loaded = load_rows(tmp_path / "ds")
    assert len(loaded) == 2
    for name, array in arrays.items():
        back = decode_array(loaded[1], name)
        assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)


def test_input_sets_from_yaml_and_csv(tmp_path):
    for name in ("face.png", "a.wav", "b.wav"):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / "set.yaml").write_text("clips:\n- {id: x, image: face.png, audio: a.wav, prompt: hi, seed: 7}\n"
                                       "- {image: face.png, audio: b.wav}\n")
    (tmp_path / "set.csv").write_text("image,audio,prompt,seed\nface.png,a.wav,hi,7\nface.png,b.wav,,\n")
    for path in (tmp_path / "set.yaml", tmp_path / "set.csv"):
        first, second = read_input_set(path)
        assert (first.id, first.prompt, first.seed, first.audio) == ("x" if path.suffix == ".yaml" else "00000",
                                                                     "hi", 7, tmp_path / "a.wav")
        assert (second.id, second.prompt, second.seed) == ("00001", "", None)
    path = tmp_path / "set.yaml"
    before = input_set_fingerprint(path, read_input_set(path))
    (tmp_path / "b.wav").write_bytes(b"changed")
    assert input_set_fingerprint(path, read_input_set(path)) != before


def test_bad_input_sets(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        read_input_set(tmp_path / "none.yaml")
    (tmp_path / "set.yaml").write_text("- {image: face.png, audio: a.wav}\n")
    with pytest.raises(UserInputError, match="image file .* does not exist"):
        read_input_set(tmp_path / "set.yaml")
    (tmp_path / "set.yaml").write_text("- {image: face.png}\n")
    with pytest.raises(UserInputError, match="needs 'image' and 'audio'"):
        read_input_set(tmp_path / "set.yaml")


def test_mouth_boxes_of_an_input_set(tmp_path):
    for name in ("face.png", "a.wav"):
        (tmp_path / name).write_bytes(name.encode())
    box = "{cx: 0.5, cy: 0.7, half_width: 0.1, jaw: 0.15}"
    (tmp_path / "set.yaml").write_text(f"- {{image: face.png, audio: a.wav, mouth_box: {box}}}\n"
                                       "- {image: face.png, audio: a.wav}\n")
    first, second = read_input_set(tmp_path / "set.yaml")
    assert first.mouth_box == {"cx": 0.5, "cy": 0.7, "half_width": 0.1, "jaw": 0.15} and second.mouth_box is None
    (tmp_path / "set.yaml").write_text("- {image: face.png, audio: a.wav, mouth_box: {cx: 0.5, cy: 0.7}}\n")
    with pytest.raises(UserInputError, match="entry 0: mouth_box must map cx, cy, half_width, jaw"):
        read_input_set(tmp_path / "set.yaml")
