"""The reference settings' sampler: validated in a recipe without torch, and replaced for another model's sampling."""

import pytest

from compress import Recipe
from compress.errors import RecipeError
from compress.pipelines.sampling import SamplingConfig
from compress.reference import ReferenceConfig


def test_sampler_defaults_to_unipc_and_euler_is_accepted():
    assert ReferenceConfig().sampling == SamplingConfig(sampler="unipc", num_inference_steps=40, guidance_scale=4.5)
    few = ReferenceConfig(sampler="euler", num_inference_steps=4, guidance_scale=0)
    assert few.sampling.dit_forwards == 4 and not few.sampling.cfg


def test_bad_sampling_values_name_the_field():
    def error(**stage):
        with pytest.raises(RecipeError) as info:
            Recipe.model_validate({"model": "tiny", "output": "o", "stages": [{"kind": "reference", **stage}]})
        return str(info.value)

    assert "sampler: expected 'unipc' or 'euler'; found 'ddim'" in error(sampler="ddim")
    assert "num_inference_steps: expected greater than or equal to 1; found 0" in error(num_inference_steps=0)


def test_with_sampling_replaces_the_sampling_and_drops_block_captures():
    config = ReferenceConfig(num_inference_steps=10, guidance_scale=3.0, block_outputs=[0], block_output_steps=[9])
    assert config.with_sampling(config.sampling) is config
    few = config.with_sampling(SamplingConfig(sampler="euler", num_inference_steps=4, guidance_scale=0.0))
    assert (few.sampler, few.num_inference_steps, few.guidance_scale) == ("euler", 4, 0.0)
    assert few.block_outputs == [] and few.block_output_steps is None and few.size == config.size
