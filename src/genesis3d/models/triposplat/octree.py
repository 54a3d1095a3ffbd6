"""Octree point sampling: a budget of points spread by the octree decoder's child probabilities.

Every random draw comes from the ``torch.Generator`` passed in, in the official draw order
(per level: one ``rand(r, 1)`` per distinct non-zero count, ascending, rows ascending within a
group; then one ``rand(B, P, 3)`` for the jitter), so a generator seeded like upstream's
global RNG reproduces upstream's points, and the same seed always gives the same points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from genesis3d.errors import ConfigError
from genesis3d.models.triposplat.decoders import OctreeProbabilityFixedlenDecoder

#: Child c of a cell has the offset (c & 1, (c >> 1) & 1, (c >> 2) & 1): x varies fastest.
CHILD_OFFSETS = torch.tensor(
    [[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=torch.int64
)
_CDF_CAP = 1 - 1e-12


def systematic_resample(
    probs: torch.Tensor, counts: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Split each row's count among its 8 children by systematic resampling.

    Args:
        probs: (B, L, 8) child probabilities (negatives clamped; an all-zero row is uniform;
            rows are divided by max(sum, 1), so a row summing below 1 leaves its remainder to
            child 7).
        counts: (B, L) int64 draws per row (0 draws nothing).
        generator: source of the one uniform per row.

    Returns:
        (B, L, 8) int64 child counts; each row sums to its count.
    """
    probs = probs.float().clamp_min(0)
    sums = probs.sum(-1, keepdim=True)
    probs = torch.where(sums == 0, torch.full_like(probs, 1 / 8), probs)
    probs = probs / probs.sum(-1, keepdim=True).clamp_min(1)
    cdf = probs.cumsum(-1).clamp_max(_CDF_CAP)

    flat_cdf = cdf.reshape(-1, 8)
    flat_counts = counts.reshape(-1)
    children = torch.zeros(flat_counts.shape[0], 8, dtype=torch.int64, device=probs.device)
    for n in torch.unique(flat_counts, sorted=True).tolist():
        if n <= 0:
            continue
        rows = torch.nonzero(flat_counts == n).squeeze(1)
        uniforms = torch.rand(
            rows.shape[0], 1, generator=generator, device=probs.device, dtype=torch.float32
        )
        steps = torch.arange(n, dtype=torch.float32, device=probs.device) / n
        positions = (uniforms / n + steps).clamp_max(_CDF_CAP)
        chosen = torch.searchsorted(flat_cdf[rows].contiguous(), positions.contiguous()).clamp_max(
            7
        )
        children[rows] = torch.nn.functional.one_hot(chosen, 8).sum(1)
    return children.reshape(*counts.shape, 8)


@dataclass
class OctreeSample:
    """Result of :func:`sample_octree_points`.

    Attributes:
        points: (B, P, 3) float32 in [0, 1)^3, Morton order of the leaf cells.
        log_probs: (B, P) float32 log-probability of each point's leaf cell.
        levels: per level, the decoder inputs and outputs (for inspection and parity checks):
            parent_centres (B, R, 3), parent_counts (B, R), logits (B, R, 8), children_counts.
    """

    points: torch.Tensor
    log_probs: torch.Tensor
    levels: list[dict[str, torch.Tensor]] = field(default_factory=list)


def sample_octree_points(
    model: OctreeProbabilityFixedlenDecoder,
    cond: torch.Tensor,
    num_points: int,
    *,
    level: int = 8,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    keep_levels: bool = False,
) -> OctreeSample:
    """Sample ``num_points`` points per batch element from the octree decoder.

    Args:
        model: the octree decoder.
        cond: (B, Lc, C) flow latent.
        num_points: point budget P per element.
        level: octree depth (resolution 2^level).
        temperature: divides the logits.
        generator: source of every random draw.
        keep_levels: also return each level's intermediates.
    """
    if num_points < 1:
        raise ConfigError(f"num_points must be at least 1, got {num_points}")
    if level < 1:
        raise ConfigError(f"level must be at least 1, got {level}")
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    batch, device = cond.shape[0], cond.device
    offsets = CHILD_OFFSETS.to(device)
    cells = torch.zeros(batch, 1, 3, dtype=torch.int64, device=device)
    counts = torch.full((batch, 1), num_points, dtype=torch.int64, device=device)
    log_probs = torch.zeros(batch, 1, dtype=torch.float32, device=device)
    levels: list[dict[str, torch.Tensor]] = []
    for lv in range(1, level + 1):
        centres = (cells.float() + 0.5) / 2 ** (lv - 1)
        resolution = torch.full((batch,), 2**lv, dtype=torch.int64, device=device)
        logits = model(centres, resolution, cond).float() / temperature
        children = systematic_resample(torch.softmax(logits, -1), counts, generator)
        if keep_levels:
            levels.append(
                {
                    "parent_centres": centres,
                    "parent_counts": counts,
                    "logits": logits,
                    "children_counts": children,
                }
            )
        child_cells = 2 * cells.unsqueeze(2) + offsets
        child_log_probs = log_probs.unsqueeze(2) + torch.log_softmax(logits, -1)
        cells, counts, log_probs = _keep_occupied(child_cells, children, child_log_probs)

    points, point_log_probs = [], []
    for b in range(batch):
        repeats = counts[b]
        points.append(torch.repeat_interleave(cells[b], repeats, dim=0))
        point_log_probs.append(torch.repeat_interleave(log_probs[b], repeats, dim=0))
    leaf = torch.stack(points).float()
    jitter = torch.rand(leaf.shape, generator=generator, device=device, dtype=torch.float32)
    return OctreeSample((leaf + jitter) / 2**level, torch.stack(point_log_probs), levels)


def _keep_occupied(
    cells: torch.Tensor, counts: torch.Tensor, log_probs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep children with count > 0 in (parent, child) order; pad batch rows with count 0."""
    batch = cells.shape[0]
    cells, counts, log_probs = cells.flatten(1, 2), counts.flatten(1), log_probs.flatten(1)
    kept = [counts[b] > 0 for b in range(batch)]
    rows = max(int(mask.sum()) for mask in kept)
    out_cells = cells.new_zeros(batch, rows, 3)
    out_counts = counts.new_zeros(batch, rows)
    out_log_probs = log_probs.new_zeros(batch, rows)
    for b, mask in enumerate(kept):
        n = int(mask.sum())
        out_cells[b, :n] = cells[b][mask]
        out_counts[b, :n] = counts[b][mask]
        out_log_probs[b, :n] = log_probs[b][mask]
    return out_cells, out_counts, out_log_probs
