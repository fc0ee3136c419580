"""What the attacks' torch code shares: goals, input gradients, distortion norms, and the IAA
perceptual distance and SSIM (the result type and configs are torch-free: compute/attacks/spec.py).

Images are float tensors in pixel space [0, 1], shape (B, C, H, W); a "pixel" is one value
(channel, row, column). A pixel counts as changed when its 8-bit value would change, i.e. when
|x' - x| >= 0.5 / 255: smaller changes vanish when the image is saved.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CHANGE_TOL = 0.5 / 255


def reached(logits: torch.Tensor, labels: torch.Tensor, kappa: float | None = None) -> torch.Tensor:
    """Per image: the model's top class is not the label (kappa None: the minimal goal), and with
    ``kappa`` its softmax probability is at least kappa as well (the confident goal)."""
    wrong = logits.argmax(1) != labels
    if kappa is None:
        return wrong
    return wrong & (torch.softmax(logits.float(), dim=1).amax(1) >= kappa)


def input_gradient(model: nn.Module, x: torch.Tensor, loss_fn) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: ANN001
    """(per-image loss (B,), gradient of its sum w.r.t. ``x``); parameters get no gradient."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x))
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad.detach()


def local_sd(x: torch.Tensor, window: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard deviation of each pixel's ``window`` x ``window`` neighbourhood (edges replicated),
    per channel, and the mask of flat pixels whose neighbourhood is constant (SD exactly 0)."""
    pad = window // 2
    b, c, h, w = x.shape
    if x.numel() == 0:  # no image (a batch where every image was wrong before the attack)
        return torch.zeros_like(x), torch.zeros_like(x, dtype=torch.bool)
    padded = F.pad(x.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode="replicate")
    patches = F.unfold(padded, window)  # (B*C, window^2, H*W)
    sd = patches.std(dim=1, unbiased=False).reshape(b, c, h, w)
    flat = (patches.amax(dim=1) == patches.amin(dim=1)).reshape(b, c, h, w)
    return sd.masked_fill(flat, 0.0), flat


def sensitivity(x: torch.Tensor, window: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Sen(x_i) = 1 / SD(x_i), infinite on flat pixels; returns (sen, flat)."""
    sd, flat = local_sd(x, window)
    return torch.where(flat, torch.full_like(sd, float("inf")), 1.0 / sd.clamp_min(1e-12)), flat


def distortion(x: torch.Tensor, adv: torch.Tensor, window: int = 3) -> dict[str, torch.Tensor]:
    """Per image: l0 (changed pixels), l2, linf, perceptual_distance (sum of |delta| * Sen over
    changed pixels with SD > 0, Sen from the original image) and flat_pixels_changed."""
    delta = (adv - x).flatten(1)
    changed = delta.abs() >= CHANGE_TOL
    sen, flat = sensitivity(x, window)
    sen, flat = sen.flatten(1), flat.flatten(1)
    textured = changed & ~flat
    return {
        "l0": changed.sum(1),
        "l2": delta.norm(dim=1),
        "linf": delta.abs().amax(dim=1),
        "perceptual_distance": torch.where(textured, delta.abs() * sen.nan_to_num(posinf=0.0), 0.0).sum(1),
        "flat_pixels_changed": (changed & flat).sum(1),
    }


def ssim(originals: np.ndarray, adversarials: np.ndarray) -> np.ndarray:
    """The structural similarity of each uint8 (N, C, H, W) adversarial to its original (1 = identical):
    scikit-image's SSIM (Wang et al. 2004), 7×7 window (or the largest odd one a smaller image allows),
    data range 255; colour images average their channels'."""
    from skimage.metrics import structural_similarity

    values = np.empty(len(originals), dtype=np.float64)
    if not len(originals):
        return values
    side = min(originals.shape[2:])
    window = min(7, side if side % 2 else side - 1)  # the standard 7, or the largest odd window that fits
    if window < 3:
        raise ValueError(f"SSIM needs images of at least 3×3 pixels, got {originals.shape[2]}×{originals.shape[3]}")
    for k, (a, b) in enumerate(zip(originals, adversarials)):
        if a.shape[0] == 1:
            values[k] = structural_similarity(a[0], b[0], data_range=255, win_size=window)
        else:
            values[k] = structural_similarity(a, b, data_range=255, channel_axis=0, win_size=window)
    return values


def smooth_gap(probs: torch.Tensor, target: torch.Tensor, k: float) -> torch.Tensor:
    """IAA's Gap(X) = P_t - log(sum_{i != t} exp(k P_i)) / k for probabilities (B, C).

    It lies in [true_gap - log(C - 1) / k, true_gap] where true_gap = P_t - max_{i != t} P_i.
    """
    others = probs.masked_fill(F.one_hot(target, probs.shape[1]).bool(), float("-inf"))
    return probs.gather(1, target[:, None]).squeeze(1) - torch.logsumexp(k * others, dim=1) / k


def true_gap(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """P_t - max_{i != t} P_i: negative exactly when another class is more likely than ``target``."""
    others = probs.masked_fill(F.one_hot(target, probs.shape[1]).bool(), float("-inf"))
    return probs.gather(1, target[:, None]).squeeze(1) - others.amax(dim=1)


def most_likely_wrong(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The most likely class other than the true one, per image."""
    return logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).argmax(1)


def linf_pgd(images: torch.Tensor, eps: float, steps: int, step_size: float,
             ascent: Callable[[int, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Projected sign-gradient ascent in the L-infinity ball of radius ``eps`` around ``images``
    (B, C, H, W), inside [0, 1], without random start: ``steps`` steps of ``step_size`` along the sign
    of ``ascent(step, x)``, the gradient of the attacker's objective at ``x``, each step projected back
    onto the ball. Returned on the 8-bit grid with every change rounded toward the original, so that
    the budget still holds."""
    from ..pixels import to_grid
    adv = images.clone()
    for step in range(steps):
        grad = ascent(step, adv)
        with torch.no_grad():
            adv = torch.min(torch.max(adv + step_size * grad.sign(), images - eps), images + eps).clamp(0.0, 1.0)
    return to_grid(adv, images)


def over_budgets(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, budgets: Sequence[float],
                 kappa: float, steps: int, attack_at: Callable[[float], torch.Tensor]):  # noqa: ANN201
    """An attack with fixed budgets (``attack_at(eps)``: its adversarials at L-infinity budget eps) at
    every budget, and per image the smallest budget that fools (minimal) and that makes a wrong class
    reach probability ``kappa`` (confident); ``min_eps`` is that budget (NaN: none). Failures keep the
    largest budget. Returns an AttackResult."""
    from .spec import AttackResult
    out: dict[float, AttackResult] = {}
    found = {goal: torch.full((len(labels),), float("nan"), device=images.device) for goal in (None, kappa)}
    picked = {goal: images.clone() for goal in found}
    for i, eps in enumerate(sorted(budgets)):
        adv = attack_at(eps)
        with torch.no_grad():
            logits = model(adv)
        for goal, where in found.items():
            new = reached(logits, labels, goal) & torch.isnan(where)
            if i == len(budgets) - 1:  # failures keep the largest budget
                new = new | torch.isnan(where)
            where[new & reached(logits, labels, goal)] = eps
            picked[goal][new] = adv[new]
        out[eps] = AttackResult(adv, logits.argmax(1) != labels, torch.full_like(labels, steps))
    iterations = torch.full_like(labels, steps)
    confident = AttackResult(picked[kappa], ~torch.isnan(found[kappa]), iterations, {"min_eps": found[kappa]})
    return AttackResult(picked[None], ~torch.isnan(found[None]), iterations, {"min_eps": found[None]}, out,
                        confident)
