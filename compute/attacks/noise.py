"""The noise control: a random perturbation of the same size as an adversarial one (Feinman et al. 2017
used noisy images of the same size among the negatives). The question it answers: does uncertainty flag
the attack more than it flags noise of the same size?

- ``linf`` (for L-infinity attacks: FGSM, EOT-PGD): random signs times the adversarial's L-infinity
  norm, so every pixel that can move moves by exactly that many 8-bit levels.
- ``l2`` (for dense L2 attacks: L-BFGS): a Gaussian direction scaled so that the 8-bit, clipped noisy
  image lies at the adversarial's L2 distance from the original (scale found by bisection; the norm
  matches to within the 8-bit grid).
- ``sparse`` (for attacks that change a few pixels: IAA): the attack's own changes, moved to as many
  random pixels among those the attack could change (SD > 0 in the ``window`` neighbourhood: IAA never
  moves a flat pixel), each with a random sign that keeps it inside [0, 1]: L0, L2 and L-infinity
  then all match the adversarial's (a change that fits nowhere is left out, so L0 can only fall short).
Each image's noise direction comes from a generator keyed by (seed, image_id, attack): the same inputs
give the same noise whatever the batch, and an attack's noise controls of one image at different sizes
share one direction (paired, like the masks of MC dropout). Tensors: (B, C, H, W) in [0, 1], on the 8-bit grid.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from ..pixels import to_grid

NORMS = ("linf", "l2", "sparse")
BISECTION_STEPS = 40


def noise_key(seed: int, image_id: int, attack: str) -> int:
    digest = hashlib.sha256(f"robustviz-noise:{seed}:{image_id}:{attack}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _draws(shape: tuple[int, ...], keys: Sequence[int], signs: bool) -> torch.Tensor:
    out = np.empty((len(keys), *shape), dtype=np.float32)
    for b, key in enumerate(keys):
        rng = np.random.Generator(np.random.PCG64(key))
        out[b] = rng.choice(np.float32([-1.0, 1.0]), size=shape) if signs else rng.standard_normal(shape, np.float32)
    return torch.from_numpy(out)


def matched_noise(original: torch.Tensor, adversarial: torch.Tensor, norm: str, image_ids: Sequence[int],
                  attack: str, seed: int, window: int = 3) -> torch.Tensor:
    """Noisy versions of ``original`` whose perturbation matches ``adversarial - original`` in ``norm``
    ("linf", "l2" or "sparse"), image by image (8-bit, in [0, 1])."""
    if norm not in NORMS:
        raise ValueError(f"noise norm must be one of {NORMS}, got {norm!r}")
    keys = [noise_key(seed, int(i), attack) for i in image_ids]
    if norm == "sparse":
        return _sparse(original, adversarial, keys, window)
    delta = (adversarial - original).flatten(1)
    view = (-1, *([1] * (original.dim() - 1)))
    if norm == "linf":
        size = delta.abs().amax(1)
        r = _draws(tuple(original.shape[1:]), keys, signs=True).to(original.device)
        return to_grid(original + size.view(view) * r, original)
    target = delta.norm(dim=1)
    d = _draws(tuple(original.shape[1:]), keys, signs=False).to(original.device)
    d = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(view)

    def l2(scale: torch.Tensor) -> torch.Tensor:
        return (to_grid(original + scale.view(view) * d) - original).flatten(1).norm(dim=1)

    lo, hi = torch.zeros_like(target), target.clone().clamp_min(1e-6)
    for _ in range(20):  # clipping at 0 and 1 wastes part of the noise: grow until the norm is reached
        short = l2(hi) < target
        if not short.any():
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        under = l2(mid) < target
        lo, hi = torch.where(under, mid, lo), torch.where(under, hi, mid)
    # The grid makes the norm a step function of the scale: keep the side closer to the target.
    best = torch.where((l2(lo) - target).abs() <= (l2(hi) - target).abs(), lo, hi)
    return to_grid(original + best.view(view) * d)


def _sparse(original: torch.Tensor, adversarial: torch.Tensor, keys: Sequence[int], window: int) -> torch.Tensor:
    """The adversarial's changes, each moved to a random pixel among those the attack could change."""
    from .common import CHANGE_TOL, local_sd

    _, flat = local_sd(original, window)
    x = original.detach().cpu().flatten(1).numpy().astype(np.float64)
    delta = (adversarial - original).detach().cpu().flatten(1).numpy().astype(np.float64)
    can_move = ~flat.cpu().flatten(1).numpy()
    out = x.copy()
    for b, key in enumerate(keys):
        rng = np.random.Generator(np.random.PCG64(key))
        sizes = np.abs(delta[b][np.abs(delta[b]) >= CHANGE_TOL])
        sizes = sizes[rng.permutation(len(sizes))]
        free = can_move[b].copy()
        for size in sizes:  # each change goes to a free pixel where it fits, with a sign that fits
            up, down = free & (x[b] + size <= 1 + 1e-9), free & (x[b] - size >= -1e-9)
            fits = np.flatnonzero(up | down)
            if len(fits) == 0:
                continue
            at = fits[rng.integers(len(fits))]
            sign = rng.choice([-1.0, 1.0]) if up[at] and down[at] else (1.0 if up[at] else -1.0)
            out[b, at] = x[b, at] + sign * size
            free[at] = False
    noisy = torch.from_numpy(out.astype(np.float32)).view_as(original.cpu()).to(original.device)
    return to_grid(noisy, original)
