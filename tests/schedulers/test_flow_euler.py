import numpy as np
import pytest
import torch

from genesis3d.errors import ConfigError
from genesis3d.schedulers import FlowEulerScheduler, GuidanceOptions


def test_shifted_schedule_known_answer():
    t = FlowEulerScheduler.timesteps(20, 3.0)
    assert t.dtype == np.float64 and t[0] == 1.0 and t[-1] == 0.0
    np.testing.assert_allclose(t[[1, 5, 10, 19]], [0.982759, 0.9, 0.75, 0.136364], atol=1e-6)


def test_linear_velocity_field_is_integrated_exactly():
    # v = eps - x0 for x_t = (1 - t) x0 + t eps is constant along the path: Euler is exact.
    x0 = torch.tensor([[2.0, -1.0]])
    eps = torch.tensor([[0.5, 0.25]])
    scheduler = FlowEulerScheduler(sigma_min=0.0)
    calls = []

    def velocity(state, t, branch):
        calls.append((branch, float(t[0])))
        return eps - x0

    out = scheduler.sample(velocity, eps, steps=7, shift=2.0)
    torch.testing.assert_close(out, x0)
    assert len(calls) == 7 and calls[0] == ("cond", 1000.0)


def test_cfg_interval_and_dict_states():
    scheduler = FlowEulerScheduler()
    branches = []

    def velocity(state, t, branch):
        branches.append((branch, float(t[0]) / 1000))
        value = 1.0 if branch == "cond" else 0.0
        return {key: torch.full_like(x, value) for key, x in state.items()}

    noise = {"latent": torch.zeros(1, 3), "camera": torch.zeros(1, 1)}
    guidance = GuidanceOptions(scale=3.0, interval=(0.5, 0.9))
    out = scheduler.sample(velocity, noise, steps=4, guidance=guidance)
    uncond_times = [t for branch, t in branches if branch == "uncond"]
    assert uncond_times == [0.75, 0.5]
    # Steps outside the interval move by v = 1; inside by 3 * 1 - 2 * 0 = 3; each step is 0.25.
    torch.testing.assert_close(out["latent"], torch.full((1, 3), -(1 + 3 + 3 + 1) * 0.25))
    assert set(out) == {"latent", "camera"}


def test_cfg_rescale_matches_its_formula():
    scheduler = FlowEulerScheduler(sigma_min=1e-5)
    generator = torch.Generator().manual_seed(0)
    x, vc, vu = (torch.randn(2, 4, 6, generator=generator) for _ in range(3))
    t, phi, s = 0.7, 0.7, 7.5
    guided = scheduler.guide(vc, vu, x, guidance=GuidanceOptions(scale=s, rescale=phi), t=t)
    sigma = 1e-5 + (1 - 1e-5) * t
    x0c = (1 - 1e-5) * x - sigma * vc
    v = s * vc - (s - 1) * vu
    x0 = (1 - 1e-5) * x - sigma * v
    ratio = x0c.std(dim=(1, 2), keepdim=True) / x0.std(dim=(1, 2), keepdim=True)
    x0r = phi * x0 * ratio + (1 - phi) * x0
    torch.testing.assert_close(guided, ((1 - 1e-5) * x - x0r) / sigma)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="steps"):
        FlowEulerScheduler.timesteps(0)
    with pytest.raises(ConfigError, match="interval"):
        GuidanceOptions(scale=2, interval=(0.9, 0.1))


def test_packed_items_take_their_rescale_std_and_time_per_item():
    from genesis3d.schedulers import FlowEulerScheduler, GuidanceOptions

    generator = torch.Generator().manual_seed(11)
    scheduler = FlowEulerScheduler()
    guidance = GuidanceOptions(scale=4.0, rescale=0.6, rescale_std="population")
    x_t = torch.randn(9, 3, generator=generator)
    v_cond, v_uncond = torch.randn(2, 9, 3, generator=generator)
    groups = [slice(0, 4), slice(4, 9)]
    packed = scheduler.guide(v_cond, v_uncond, x_t, guidance=guidance, t=0.8, groups=groups)
    for rows in groups:
        alone = scheduler.guide(
            v_cond[rows][None], v_uncond[rows][None], x_t[rows][None], guidance=guidance, t=0.8
        )
        torch.testing.assert_close(packed[rows], alone[0], atol=1e-6, rtol=1e-6)
    seen = []

    def velocity(state, t, branch):
        seen.append(t.shape)
        return torch.zeros_like(state)

    scheduler.sample(velocity, x_t, steps=2, guidance=guidance, groups=groups)
    assert seen and all(shape == (2,) for shape in seen)


def test_explicit_schedule_sets_the_model_times_and_steps():
    schedule = np.float32([1.0, 0.75, 0.5, 0.0])
    seen = []

    def velocity(x, t, branch):
        seen.append(t.clone())
        return torch.ones_like(x)

    out = FlowEulerScheduler(sigma_min=0.0).sample(
        velocity, torch.zeros(1, 2), steps=3, schedule=schedule
    )
    assert [float(t[0]) for t in seen] == [1000.0, 750.0, 500.0]
    torch.testing.assert_close(out, torch.full((1, 2), -1.0))
    with pytest.raises(ConfigError, match="steps \\+ 1 = 3"):
        FlowEulerScheduler().sample(velocity, torch.zeros(1, 2), steps=2, schedule=schedule)
