"""Replicate draws for inference, deterministic given the seed and independent of how the
replicates are split into blocks (each replicate has its own spawned seed).

- Bootstrap over devices: each device gets a multiplier per replicate — Poisson(1)
  (default) or multinomial (n draws from n devices). A multiplier scales the device's
  whole contribution (its dwell in every place, its presence in every bin, its weight
  among the devices summarised), so every index is recomputed exactly for the resampled
  panel: the places' compositions, the others each device meets and the summaries move
  together. A device's own copies are never its own "others".
- Permutation null (Moro et al. 2021): the devices' group shares (and SES) are shuffled
  across devices; mobility, dwell and weights stay with the device.

Replicates run in blocks: each compiled pass (`kernels.py`) reads its rows — the
(device, unit) dwell rows or the (device, cell, bin) presence rows — once per block, with
the block's replicates in the innermost loop.
"""

from __future__ import annotations

import numpy as np

_BOOT, _NULL = 0, 1


def _children(seed: int, stream: int, total: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(2)[stream].spawn(total)


def multipliers(n: int, reps: range, total: int, seed: int, method: str = "poisson") -> np.ndarray:
    """(n, len(reps)) bootstrap multiplicities (small integers, uint8 when they fit) for
    replicates `reps` out of `total`."""
    kids = _children(seed, _BOOT, total)
    out = np.empty((n, len(reps)), dtype=np.int64)
    for j, r in enumerate(reps):
        rng = np.random.default_rng(kids[r])
        if method == "multinomial":
            out[:, j] = rng.multinomial(n, np.full(n, 1.0 / n))
        else:
            out[:, j] = rng.poisson(1.0, n)
    return out.astype(np.uint8) if out.size and out.max() < 256 else out


def permutations(n: int, reps: range, total: int, seed: int) -> np.ndarray:
    """(len(reps), n) permutations of the devices for null replicates `reps`."""
    kids = _children(seed, _NULL, total)
    return (
        np.stack([np.random.default_rng(kids[r]).permutation(n) for r in reps])
        if len(reps)
        else np.zeros((0, n), dtype=np.int64)
    )


def blocks(total: int, size: int) -> list[range]:
    return [range(i, min(i + size, total)) for i in range(0, total, size)]
