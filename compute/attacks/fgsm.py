"""FGSM, the fast gradient sign method (Goodfellow, Shlens & Szegedy, ICLR 2015).

Threat model: white-box, untargeted, L-infinity budget epsilon, one gradient step in pixel space:
    x' = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
Tensors: images (B, C, H, W) in [0, 1], labels (B,) int64. The model is used in eval mode.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .common import input_gradient


def fgsm_direction(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """sign(grad_x CE(f(x), y)): the direction every epsilon moves along, (B, C, H, W)."""
    _, grad = input_gradient(model, images, lambda logits: F.cross_entropy(logits, labels, reduction="none"))
    return grad.sign()


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float,
         direction: torch.Tensor | None = None) -> torch.Tensor:
    """FGSM adversarials at ``eps`` (``direction`` may be passed in to reuse one gradient)."""
    if eps < 0:
        raise ValueError(f"FGSM epsilon must be >= 0, got {eps}")
    if direction is None:
        direction = fgsm_direction(model, images, labels)
    return (images + eps * direction).clamp_(0.0, 1.0)


@torch.no_grad()
def _flipped(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, direction: torch.Tensor,
             eps: torch.Tensor) -> torch.Tensor:
    adv = (images + eps.view(-1, 1, 1, 1) * direction).clamp_(0.0, 1.0)
    return model(adv).argmax(1) != labels


@torch.no_grad()
def min_flip_eps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, direction: torch.Tensor,
                 eps_max: float, grid: int = 16, refine: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's smallest FGSM epsilon in (0, eps_max] that flips its prediction.

    A grid of ``grid`` epsilons finds the first flip; ``refine`` bisection steps narrow the bracket
    to eps_max / grid / 2**refine. Returns (min_eps (B,), NaN where nothing up to eps_max flips,
    forward passes used). Images already misclassified get 0.
    """
    b = images.shape[0]
    already = model(images).argmax(1) != labels
    lo = torch.zeros(b, dtype=images.dtype, device=images.device)
    hi = torch.full_like(lo, float("nan"))
    hi[already] = 0.0
    passes = 1
    for k in range(1, grid + 1):
        open_ = torch.isnan(hi)
        if not open_.any():
            break
        eps = torch.full((int(open_.sum()),), eps_max * k / grid, dtype=images.dtype, device=images.device)
        flip = _flipped(model, images[open_], labels[open_], direction[open_], eps)
        idx = torch.nonzero(open_).squeeze(1)
        hi[idx[flip]] = eps[flip]
        lo[idx[~flip]] = eps[~flip]
        passes += 1
    bracket = ~torch.isnan(hi) & (hi > 0)
    idx = torch.nonzero(bracket).squeeze(1)
    for _ in range(refine if len(idx) else 0):
        mid = (lo[idx] + hi[idx]) / 2
        flip = _flipped(model, images[idx], labels[idx], direction[idx], mid)
        hi[idx[flip]] = mid[flip]
        lo[idx[~flip]] = mid[~flip]
        passes += 1
    return hi, passes
