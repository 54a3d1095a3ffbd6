"""The official stage settings through the shared scheduler: which steps use guidance."""

import pytest
import torch

from genesis3d.models.trellis2.sampling import SamplerSettings
from genesis3d.schedulers import FlowEulerScheduler


@pytest.mark.parametrize(
    ("rescale_t", "interval", "guided_steps"),
    [
        (5.0, (0.6, 1.0), 10),  # structure stage: 22 model calls
        (3.0, (0.6, 1.0), 9),  # shape stage: t = 0.6000000000000001 at step 9 is inside
    ],
)
def test_stage_schedules_guide_the_official_steps(rescale_t, interval, guided_steps):
    settings = SamplerSettings(
        steps=12, rescale_t=rescale_t, guidance_strength=7.5, guidance_rescale=0.5,
        guidance_interval=interval,
    )  # fmt: skip
    calls = []

    def velocity(state, t, branch):
        calls.append(branch)
        return torch.zeros_like(state)

    FlowEulerScheduler(sigma_min=settings.sigma_min).sample(
        velocity, torch.arange(4.0)[None], steps=12, shift=rescale_t,
        guidance=settings.guidance("unbiased"),
    )  # fmt: skip
    assert calls.count("uncond") == guided_steps
    assert len(calls) == 12 + guided_steps
