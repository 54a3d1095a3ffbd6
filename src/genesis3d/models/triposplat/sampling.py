"""TripoSplat's flow sampling: the DiT driven by the shared rectified-flow Euler scheduler."""

from __future__ import annotations

import torch

from genesis3d.models.triposplat.flow_model import LatentSeqMMFlowModel
from genesis3d.schedulers import FlowEulerScheduler, GuidanceOptions
from genesis3d.schedulers.flow_euler import StepCallback

Features = tuple[torch.Tensor, torch.Tensor]


def sample_flow(
    model: LatentSeqMMFlowModel,
    noise: dict[str, torch.Tensor],
    cond: Features,
    neg_cond: Features,
    *,
    steps: int = 20,
    shift: float = 3.0,
    guidance_scale: float = 3.0,
    sigma_min: float = 1e-5,
    callback: StepCallback | None = None,
) -> dict[str, torch.Tensor]:
    """Denoise the latent and camera streams together (CFG applies to both).

    Args:
        model: the flow DiT.
        noise: {"latent": (B, Q, 16), "camera": (B, 1, 5)} float32 initial state.
        cond: (feature1, feature2) of the picture.
        neg_cond: the unconditional features (upstream: zeros of the same shapes).
        steps, shift, guidance_scale: sampler settings (released defaults 20, 3, 3).
        callback: called after each step with (step, steps, state).

    Returns:
        {"latent", "camera"} at t = 0, float32.
    """

    def velocity(
        state: dict[str, torch.Tensor], t: torch.Tensor, branch: str
    ) -> dict[str, torch.Tensor]:
        feature1, feature2 = cond if branch == "cond" else neg_cond
        v_latent, v_camera = model(state["latent"], state["camera"], t, feature1, feature2)
        return {"latent": v_latent, "camera": v_camera}

    scheduler = FlowEulerScheduler(sigma_min=sigma_min)
    result = scheduler.sample(
        velocity,
        noise,
        steps=steps,
        shift=shift,
        guidance=GuidanceOptions(scale=guidance_scale),
        callback=callback,
    )
    assert isinstance(result, dict)
    return result
