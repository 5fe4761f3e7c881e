"""`ReferenceArtifact` on a small reference of the tiny teacher: it refuses other artifacts, gives the settings,
clips, rows, stored teacher outputs and mouth boxes, builds the teacher's components, and regenerating with the
same DiT reproduces the stored latents."""

import json

import numpy as np
import pytest
import torch

from compress.errors import UserInputError
from compress.pipelines.sampling import SamplingConfig
from compress.quant import relative_error
from compress.reference import ReferenceArtifact, ReferenceConfig
from compress.reference.artifact import ReferenceContext
from compress.utils.arrays import decode_array
from tests.reference.conftest import SETTINGS


def test_other_artifacts_are_refused_by_path_and_kind(run):
    _, result = run
    with pytest.raises(UserInputError, match=rf"{result['source'].path} is a 'source' artifact, not a reference"):
        ReferenceArtifact(result["source"])


def test_settings_clips_rows_and_teacher_outputs(run):
    root, result = run
    reference = ReferenceArtifact(result["ref"].path, ReferenceContext(root=root))
    assert reference.config == ReferenceConfig(**SETTINGS)
    assert reference.inputs_file == result["ref"].path / "inputs" / "inputs.yaml"
    assert len(reference) == 2 and [c.id for c in reference.clips] == reference.rows["id"] == ["train-000",
                                                                                                "train-001"]
    teacher = reference.teacher(1)
    row = reference.rows[1]
    assert teacher["id"] == "train-001" and teacher["fps"] == row["fps"] and teacher["sample_rate"] == 16_000
    assert teacher["frames"].shape == (8, 64, 64, 3) and teacher["frames"].dtype == np.uint8
    assert torch.equal(teacher["latents"], torch.from_numpy(decode_array(row, "latents").copy()))
    assert teacher["audio"].dtype == np.float32 and len(teacher["audio"]) == 8000
    assert len(ReferenceArtifact(result["ref"], max_inputs=1)) == 1


def test_mouth_boxes_come_from_the_input_set(run):
    _, result = run
    reference = ReferenceArtifact(result["ref"])
    boxes = reference.mouth_boxes
    assert set(boxes) == {"train-000", "train-001"}
    assert set(boxes["train-000"]) == {"cx", "cy", "half_width", "jaw", "smile"}
    assert all(0 < v < 1 for v in boxes["train-000"].values())
    assert reference.teacher(0)["mouth_box"] == boxes["train-000"] == reference.clips[0].mouth_box


def test_components_around_a_meta_teacher_and_the_vae_alone(run):
    _, result = run
    reference = ReferenceArtifact(result["ref"])
    components = reference.components()
    assert next(components.dit.parameters()).is_meta and not next(components.vae.parameters()).is_meta
    vae = reference.vae()
    assert all(torch.equal(a, b) for a, b in zip(vae.state_dict().values(), components.vae.state_dict().values()))


def test_regenerating_with_the_same_dit_reproduces_the_stored_latents(run):
    root, result = run
    reference = ReferenceArtifact(result["ref"], ReferenceContext(root=root))
    regenerate = reference.regenerate(result["source"].load_model())
    for index in range(len(reference)):
        assert relative_error(regenerate(index).latents, reference.teacher(index)["latents"]) < 1e-5


def test_a_teacher_pointer_outside_the_roots_is_refused(tmp_path):
    """The manifest's `input.path` (the teacher the components are built for) is checked against the roots."""
    folder = tmp_path / "work" / "01-reference"
    folder.mkdir(parents=True)
    manifest = {"name": "reference", "kind": "reference", "hash": "h", "files": {}, "stage_config": {},
                "input": {"name": "source", "path": str(tmp_path / "outside" / "00-source"), "hash": "s"}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    reference = ReferenceArtifact(folder, ReferenceContext(root=tmp_path / "work"))
    with pytest.raises(UserInputError, match="outside the working root"):
        reference.vae()


def test_regenerating_with_another_sampling(run, monkeypatch):
    """`sampling` replaces the reference's (2 UniPC steps with CFG): 1 Euler step without guidance is one DiT
    forward per clip, and different latents."""
    root, result = run
    reference = ReferenceArtifact(result["ref"], ReferenceContext(root=root))
    dit, calls = result["source"].load_model(), []
    forward = dit.forward
    monkeypatch.setattr(dit, "forward", lambda *args, **kwargs: (calls.append(1), forward(*args, **kwargs))[1])
    few = reference.regenerate(dit, SamplingConfig(sampler="euler", num_inference_steps=1, guidance_scale=0.0))(0)
    assert len(calls) == few.latents.shape[0] == reference.rows[0]["num_clips"]
    assert relative_error(few.latents, reference.teacher(0)["latents"]) > 1e-3
