"""TripoSG's rectified-flow sampling through the shared Euler scheduler (spec 2.6).

TripoSG's own ``RectifiedFlowScheduler`` differs from the shared convention in two ways,
both handled here and nowhere else:

* **Sign.** Its model predicts v ~ x_0 - noise and steps x <- x + (sigma_i - sigma_{i+1}) v;
  the shared scheduler steps x <- x - v (t - t_next) with v ~ noise - x_0. The velocity
  handed to the scheduler is therefore the DiT's output negated (exact in floating point,
  and it commutes with the CFG blend).
* **Schedule.** sigma_i = 1 - i/N computed in float64, rounded to float32 (then shifted,
  identity at the released shift 1), a trailing 0; the model time is float32 sigma * 1000
  in float32. The step differences are float32 too.

CFG: v = v_uncond + w (v_cond - v_uncond) with an all-zero unconditional context.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from genesis3d.models.triposg.transformer import TripoSGDiTModel
from genesis3d.schedulers import FlowEulerScheduler, GuidanceOptions

#: called after each step with (step from 1, steps, latents).
StepCallback = Callable[[int, int, torch.Tensor], None]
#: called with each raw DiT output: (branch "cond" | "uncond", velocity v ~ x_0 - noise).
OutputHook = Callable[[str, torch.Tensor], None]


def rectified_flow_sigmas(steps: int, shift: float = 1.0) -> np.ndarray:
    """(steps + 1,) float32: the sigmas of TripoSG's scheduler, 1 ... 1/steps, then 0."""
    sigmas = np.array([1.0 - i / steps for i in range(steps)], dtype=np.float64)
    sigmas = (shift * sigmas / (1 + (shift - 1) * sigmas)).astype(np.float32)
    return np.concatenate([sigmas, np.zeros(1, dtype=np.float32)])


def rectified_flow_timesteps(steps: int, shift: float = 1.0) -> np.ndarray:
    """(steps,) float32 model times: float32 sigma * 1000 in float32 (1000, 980, ... at 50)."""
    return rectified_flow_sigmas(steps, shift)[:-1] * np.float32(1000.0)


def sample_latents(
    model: TripoSGDiTModel,
    noise: torch.Tensor,
    condition: torch.Tensor,
    *,
    steps: int = 50,
    guidance_scale: float = 7.0,
    shift: float = 1.0,
    callback: StepCallback | None = None,
    on_model_output: OutputHook | None = None,
) -> torch.Tensor:
    """Denoise ``noise`` into a shape latent.

    Args:
        model: the flow transformer.
        noise: (B, N, C) initial latents x_T ~ N(0, I); float32 keeps the Euler updates in
            float32 whatever the model's dtype.
        condition: (B, S, cross_attention_dim) DINOv2 tokens of the picture.
        steps: Euler steps (released default 50).
        guidance_scale: CFG strength (released default 7); <= 1 skips the unconditional pass.
        shift: timestep shift (released 1: none).
        callback: progress hook, called after each step.
        on_model_output: sees every raw DiT output (tests compare them with the official ones).

    Returns:
        (B, N, C) latents at sigma = 0, in the dtype of ``noise``.
    """
    dtype = model.proj_in.weight.dtype
    condition = condition.to(dtype)
    unconditional = torch.zeros_like(condition)

    def velocity(state: torch.Tensor, t_model: torch.Tensor, branch: str) -> torch.Tensor:
        context = condition if branch == "cond" else unconditional
        output = model(state.to(dtype), t_model.to(state.device), context)
        if on_model_output is not None:
            on_model_output(branch, output)
        # The update runs in the state's dtype (float32 for a float32 state, as upstream).
        return -output.to(state.dtype)

    schedule = rectified_flow_sigmas(steps, shift)
    result = FlowEulerScheduler(sigma_min=0.0, time_scale=1000.0).sample(
        velocity,
        noise,
        steps=steps,
        guidance=GuidanceOptions(scale=guidance_scale),
        schedule=schedule,
        callback=callback,
    )
    assert isinstance(result, torch.Tensor)
    return result
