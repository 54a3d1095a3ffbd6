"""TRELLIS.2's flow sampling: its flows driven by the shared rectified-flow Euler scheduler.

Official ``FlowEulerGuidanceIntervalSampler`` semantics: the schedule is
t_i = r s / (1 + (r - 1) s) for s = linspace(1, 0, steps + 1) in float64; CFG (two separate
model calls, conditional first) only at steps whose t lies in the guidance interval; CFG
rescale compares the std of the conditional and guided x_0 predictions per batch item:
unbiased for the dense structure latent, population (biased) for sparse latents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

from genesis3d.errors import ConfigError
from genesis3d.models.trellis2.flow import SLatFlowModel, SparseStructureFlowModel
from genesis3d.nn.sparse.tensor import SparseTensor
from genesis3d.schedulers import FlowEulerScheduler, GuidanceOptions
from genesis3d.schedulers.flow_euler import StepCallback

T = TypeVar("T", torch.Tensor, SparseTensor)


@dataclass(frozen=True)
class SamplerSettings:
    """One stage's sampler parameters, named as in the official ``pipeline.json``."""

    steps: int = 12
    rescale_t: float = 1.0
    guidance_strength: float = 1.0
    guidance_rescale: float = 0.0
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    sigma_min: float = 1e-5

    def __post_init__(self) -> None:
        if self.guidance_strength < 1.0:
            raise ConfigError(
                f"guidance_strength must be at least 1 (1 disables guidance), got {self.guidance_strength}"
            )

    def guidance(self, std: str) -> GuidanceOptions:
        return GuidanceOptions(
            scale=self.guidance_strength,
            rescale=self.guidance_rescale,
            interval=(float(self.guidance_interval[0]), float(self.guidance_interval[1])),
            rescale_std="unbiased" if std == "unbiased" else "population",
        )


@dataclass
class SampleTrace(Generic[T]):
    """The result and, per step, the state after it (``x_t``) and the x_0 prediction."""

    samples: T
    x_t: list[T] = field(default_factory=list)
    x_0: list[T] = field(default_factory=list)


def sample_dense(
    model: SparseStructureFlowModel,
    noise: torch.Tensor,
    cond: torch.Tensor,
    neg_cond: torch.Tensor,
    settings: SamplerSettings,
    *,
    callback: StepCallback | None = None,
) -> SampleTrace[torch.Tensor]:
    """Sample the dense structure latent (B, C, R, R, R) from ``noise``."""
    scheduler = FlowEulerScheduler(sigma_min=settings.sigma_min)
    trace: SampleTrace[torch.Tensor] = SampleTrace(noise)

    def velocity(state: torch.Tensor, t: torch.Tensor, branch: str) -> torch.Tensor:
        return model(state, t, cond if branch == "cond" else neg_cond)

    def record(step: int, total: int, state: torch.Tensor) -> None:
        trace.x_t.append(state)
        if callback is not None:
            callback(step, total, state)

    def predicted(_index: int, t: float, x_t: torch.Tensor, v: torch.Tensor) -> None:
        trace.x_0.append(scheduler.predict_x0(x_t, v, t))

    result = scheduler.sample(
        velocity,
        noise,
        steps=settings.steps,
        shift=settings.rescale_t,
        guidance=settings.guidance("unbiased"),
        callback=record,
        prediction_callback=predicted,
    )
    assert isinstance(result, torch.Tensor)
    trace.samples = result
    return trace


def sample_sparse(
    model: SLatFlowModel,
    noise: SparseTensor,
    cond: torch.Tensor,
    neg_cond: torch.Tensor,
    settings: SamplerSettings,
    *,
    concat_cond: SparseTensor | None = None,
    callback: StepCallback | None = None,
) -> SampleTrace[SparseTensor]:
    """Sample a sparse latent on the voxels of ``noise`` (features (T, C))."""
    scheduler = FlowEulerScheduler(sigma_min=settings.sigma_min)
    trace: SampleTrace[SparseTensor] = SampleTrace(noise)

    def velocity(state: torch.Tensor, t: torch.Tensor, branch: str) -> torch.Tensor:
        context = cond if branch == "cond" else neg_cond
        return model(noise.replace(state), t, context, concat_cond).feats

    def record(step: int, total: int, state: torch.Tensor) -> None:
        trace.x_t.append(noise.replace(state))
        if callback is not None:
            callback(step, total, state)

    def predicted(_index: int, t: float, x_t: torch.Tensor, v: torch.Tensor) -> None:
        trace.x_0.append(noise.replace(scheduler.predict_x0(x_t, v, t)))

    result = scheduler.sample(
        velocity,
        noise.feats,
        steps=settings.steps,
        shift=settings.rescale_t,
        guidance=settings.guidance("population"),
        callback=record,
        groups=noise.layout,
        prediction_callback=predicted,
    )
    assert isinstance(result, torch.Tensor)
    trace.samples = noise.replace(result)
    return trace
