"""Sampling math: rectified-flow Euler with timestep shift and classifier-free guidance."""

from genesis3d.schedulers.flow_euler import FlowEulerScheduler, GuidanceOptions

__all__ = ["FlowEulerScheduler", "GuidanceOptions"]
