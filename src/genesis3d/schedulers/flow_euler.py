"""Rectified-flow Euler sampling with timestep shift, CFG, CFG rescale and a guidance interval.

Convention (TripoSplat, TRELLIS.2): x_t = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) eps, the
model predicts v ~ (1 - sigma_min) eps - x_0, and sampling runs t from 1 to 0 with
x <- x - v (t - t_next). A state is a tensor or a dict of tensors (TripoSplat denoises a latent
and a camera token together); guidance applies to every entry. A state may also pack
variable-length batch items row after row (TRELLIS.2's sparse latents): ``groups`` then gives
each item's rows, the model time has one entry per item, and the CFG-rescale std is taken
per item.

The schedule is computed in float64 (as the official samplers do with numpy); the model
receives ``time_scale * t`` as a float32 tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import torch

from genesis3d.errors import ConfigError

State = torch.Tensor | dict[str, torch.Tensor]
#: velocity_fn(state, t_model (B,) float32, branch) -> velocity with the state's structure.
VelocityFn = Callable[[State, torch.Tensor, Literal["cond", "uncond"]], State]
#: step_callback(step index from 1, total steps, state after the step).
StepCallback = Callable[[int, int, State], None]
#: prediction_callback(step index from 0, t, x_t, guided velocity) before the Euler step.
PredictionCallback = Callable[[int, float, State, State], None]


@dataclass(frozen=True)
class GuidanceOptions:
    """Classifier-free guidance settings.

    Attributes:
        scale: v = scale v_cond - (scale - 1) v_uncond; at <= 1 the unconditional pass is skipped.
        rescale: phi in [0, 1]; blends the guided x_0 with one rescaled to the conditional std.
        interval: (lo, hi); guidance is used only at steps whose t lies in [lo, hi].
        rescale_std: "unbiased" (torch default) or "population" std over each batch item;
            population std is sqrt(E[x^2] - E[x]^2) over all of the item's values.
    """

    scale: float = 1.0
    rescale: float = 0.0
    interval: tuple[float, float] = (0.0, 1.0)
    rescale_std: Literal["unbiased", "population"] = "unbiased"

    def __post_init__(self) -> None:
        if not 0.0 <= self.rescale <= 1.0:
            raise ConfigError(f"guidance rescale must be in [0, 1], got {self.rescale}")
        lo, hi = self.interval
        if not 0.0 <= lo <= hi <= 1.0:
            raise ConfigError(
                f"guidance interval must satisfy 0 <= lo <= hi <= 1, got {self.interval}"
            )

    def active(self, t: float) -> bool:
        return self.scale > 1.0 and self.interval[0] <= t <= self.interval[1]


@dataclass(frozen=True)
class FlowEulerScheduler:
    """Rectified-flow Euler sampler (a standalone math object; the model is passed in)."""

    sigma_min: float = 1e-5
    time_scale: float = 1000.0

    @staticmethod
    def timesteps(steps: int, shift: float = 1.0) -> np.ndarray:
        """t_i = shift s / (1 + (shift - 1) s) for s = linspace(1, 0, steps + 1), float64."""
        if steps < 1:
            raise ConfigError(f"steps must be at least 1, got {steps}")
        if shift <= 0:
            raise ConfigError(f"shift must be positive, got {shift}")
        s = np.linspace(1, 0, steps + 1)
        return shift * s / (1 + (shift - 1) * s)

    @staticmethod
    def step(x: torch.Tensor, velocity: torch.Tensor, *, t: float, t_next: float) -> torch.Tensor:
        """One Euler step from t to t_next: x - v (t - t_next)."""
        return x - velocity * (t - t_next)

    def predict_x0(self, x_t: torch.Tensor, velocity: torch.Tensor, t: float) -> torch.Tensor:
        """The clean sample implied by a velocity: (1 - s) x_t - (s + (1 - s) t) v."""
        return (1 - self.sigma_min) * x_t - (self.sigma_min + (1 - self.sigma_min) * t) * velocity

    def guide(
        self,
        v_cond: torch.Tensor,
        v_uncond: torch.Tensor,
        x_t: torch.Tensor,
        *,
        guidance: GuidanceOptions,
        t: float,
        groups: Sequence[slice] | None = None,
    ) -> torch.Tensor:
        """Blend two velocities with CFG (and CFG rescale when ``guidance.rescale > 0``).

        ``groups``: row ranges of packed batch items (the std is then taken per item).
        """
        scale = guidance.scale
        v = scale * v_cond - (scale - 1) * v_uncond
        if guidance.rescale <= 0:
            return v
        sigma = self.sigma_min + (1 - self.sigma_min) * t
        x0_cond = (1 - self.sigma_min) * x_t - sigma * v_cond
        x0_cfg = (1 - self.sigma_min) * x_t - sigma * v
        unbiased = guidance.rescale_std == "unbiased"
        ratio = _item_std(x0_cond, unbiased, groups) / _item_std(x0_cfg, unbiased, groups)
        x0 = guidance.rescale * x0_cfg * ratio + (1 - guidance.rescale) * x0_cfg
        return ((1 - self.sigma_min) * x_t - x0) / sigma

    def sample(
        self,
        velocity_fn: VelocityFn,
        noise: State,
        *,
        steps: int,
        shift: float = 1.0,
        guidance: GuidanceOptions | None = None,
        callback: StepCallback | None = None,
        groups: Sequence[slice] | None = None,
        prediction_callback: PredictionCallback | None = None,
        schedule: np.ndarray | None = None,
    ) -> State:
        """Integrate from t = 1 (``noise``) to t = 0.

        Args:
            velocity_fn: the model, called with the state, the model time (B,) and the branch.
            noise: the initial state (tensor or dict of tensors, batch first).
            steps: Euler steps; the model is called once per step, twice where CFG is active.
            shift: timestep shift (1 = linear schedule).
            guidance: CFG settings (default: no guidance).
            callback: called after each step, e.g. to report progress or cancel by raising.
            groups: row ranges of the batch items when the state packs variable-length items.
            prediction_callback: called before each Euler step with the guided velocity.
            schedule: an explicit t sequence (steps + 1 values from 1 down to 0) replacing
                :meth:`timesteps`, for a model whose own scheduler rounds it differently
                (TripoSG: float32 sigmas); the arithmetic then runs in its dtype.

        Returns:
            The state at t = 0, with the structure of ``noise``.
        """
        guidance = guidance or GuidanceOptions()
        if schedule is None:
            schedule = self.timesteps(steps, shift)
        elif schedule.shape != (steps + 1,):
            raise ConfigError(
                f"schedule must hold steps + 1 = {steps + 1} values, got shape {schedule.shape}"
            )
        state = noise
        batch = len(groups) if groups is not None else _first(noise).shape[0]
        device = _first(noise).device
        for index in range(steps):
            t, t_next = schedule[index], schedule[index + 1]
            t_model = torch.full((batch,), self.time_scale * t, dtype=torch.float32, device=device)
            velocity = velocity_fn(state, t_model, "cond")
            if guidance.active(t):
                unconditional = velocity_fn(state, t_model, "uncond")
                velocity = _zip_map(
                    partial(self.guide, guidance=guidance, t=float(t), groups=groups),
                    velocity,
                    unconditional,
                    state,
                )
            if prediction_callback is not None:
                prediction_callback(index, float(t), state, velocity)
            state = _zip_map(partial(self.step, t=t, t_next=t_next), state, velocity)
            if callback is not None:
                callback(index + 1, steps, state)
        return state


def _item_std(x: torch.Tensor, unbiased: bool, groups: Sequence[slice] | None) -> torch.Tensor:
    """Std over everything but the batch axis, per batch item, broadcastable against x."""
    if groups is None:
        if unbiased:
            return x.std(dim=tuple(range(1, x.dim())), keepdim=True)
        flat = x.flatten(1)
        mean_square = flat.square().mean(dim=1) - flat.mean(dim=1).square()
        return mean_square.sqrt().reshape(-1, *([1] * (x.dim() - 1)))
    stds = []
    for rows in groups:
        item = x[rows]
        if unbiased:
            stds.append(item.std())
        else:
            stds.append((item.square().mean() - item.mean().square()).sqrt())
    lengths = torch.tensor([rows.stop - rows.start for rows in groups], device=x.device)
    per_row = torch.repeat_interleave(torch.stack(stds), lengths)
    return per_row.reshape(-1, *([1] * (x.dim() - 1)))


def _first(state: State) -> torch.Tensor:
    return next(iter(state.values())) if isinstance(state, Mapping) else state


def _zip_map(fn: Callable[..., torch.Tensor], *states: State) -> State:
    """Apply ``fn`` entry by entry to states of the same structure."""
    first = states[0]
    if isinstance(first, Mapping):
        return {key: fn(*(state[key] for state in states)) for key in first}
    return fn(*states)
