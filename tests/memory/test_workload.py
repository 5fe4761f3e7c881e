"""A workload's sampler and steps: DiT forwards per clip, validated."""

import pytest

from compress.errors import UserInputError
from compress.memory import Workload


def test_dit_forwards_follow_steps_and_guidance():
    assert Workload().dit_forwards == 80  # upstream: 40 UniPC steps with CFG
    assert Workload(cfg=False, sampler="euler", steps=4).dit_forwards == 4  # a 4-step model without CFG


@pytest.mark.parametrize("bad", [{"sampler": "ddim"}, {"steps": 0}])
def test_bad_sampling_is_refused(bad):
    with pytest.raises(UserInputError, match=r"sampler must be one of unipc, euler \(got .*\) and steps from 1"):
        Workload(**bad)
