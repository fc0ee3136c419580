"""FGSM, the fast gradient sign method (Goodfellow, Shlens & Szegedy, ICLR 2015).

Threat model: white-box, untargeted, L-infinity budget epsilon, one gradient step in pixel space:
    x' = clip(x + eps * sign(grad_x CE(f(x), y)), 0, 1)
Tensors: images (B, C, H, W) in [0, 1], labels (B,) int64. The model is used in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .spec import AttackConfig, AttackResult, Card

if TYPE_CHECKING:  # torch is imported where it runs: the configs above must load without it
    import torch
    from torch import nn

GREY_EPS = (0.05, 0.1, 0.2, 0.3)
COLOUR_EPS = (2 / 255, 4 / 255, 8 / 255)


@dataclass(frozen=True)
class FgsmConfig(AttackConfig):
    eps: tuple[float, ...] = ()  # budgets to report; () = 0.05, 0.1, 0.2, 0.3 (MNIST-like) or 2, 4, 8 /255 (colour)
    search_max: float = 0.0  # largest epsilon tried for each image's smallest flip (0 = 0.5 grey, 32/255 colour)
    search_grid: int = 16  # grid steps up to search_max before bisection
    search_refine: int = 8  # at most this many bisection steps inside the first flipping grid interval (to one 8-bit level)

    def resolve(self, channels: int) -> FgsmConfig:
        """Fill the defaults that depend on the data: greyscale (1 channel) or colour."""
        grey = channels == 1
        return replace(self, eps=self.eps or (GREY_EPS if grey else COLOUR_EPS),
                       search_max=self.search_max or (0.5 if grey else 32 / 255))

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every invalid value; empty when valid."""
        out = [("eps", f"values must be >= 0 (an L-infinity budget in [0, 1]), got {eps}") for eps in self.eps if eps < 0]
        if self.search_max < 0 or self.search_grid < 1 or self.search_refine < 0:
            out.append(("", "needs search_max >= 0, search_grid >= 1 and search_refine >= 0"))
        return out

    def limit_caption(self) -> str:
        return f"ε ≤ {self.search_max:.4g}"


CARD = Card("FGSM", "Goodfellow et al. 2015: one step along the sign of the gradient, L∞ budget ε, untargeted",
            norm="linf", colour="blue", ranking_column="min_eps", ranking_label="smallest flipping ε (FGSM)",
            ranking_symbol="ε", own_column="min_eps", own_symbol="ε")


def fgsm_direction(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """sign(grad_x CE(f(x), y)): the direction every epsilon moves along, (B, C, H, W)."""
    from .common import input_gradient
    from torch.nn import functional as F
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


def _flipped(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, direction: torch.Tensor,
             levels: torch.Tensor, kappa: float | None) -> torch.Tensor:
    """Whether each image at ``levels`` / 255 along ``direction`` meets the goal (called without gradients)."""
    from ..pixels import to_grid
    from .common import reached
    adv = to_grid(images + (levels / 255).view(-1, 1, 1, 1) * direction)
    return reached(model(adv), labels, kappa)


def min_flip_eps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, direction: torch.Tensor,
                 eps_max: float, grid: int = 16, refine: int = 8,
                 kappa: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's smallest FGSM epsilon in (0, eps_max] that flips its prediction (with ``kappa``:
    that makes a wrong class win with probability >= kappa), judged on the 8-bit image: epsilon
    runs over whole levels k/255, so the adversarial x + k/255 sign(grad) is exactly what is saved.

    A grid of ``grid`` levels finds the first flip; then bisection (at most ``refine`` steps) narrows
    the bracket to one level: the image flips at ``min_eps`` and not at ``min_eps - 1/255``.
    Returns (min_eps (B,), NaN where nothing up to eps_max flips; forwards: model calls per image (B,)).
    Images that already meet the goal get 0.
    """
    import torch
    from .common import reached
    with torch.no_grad():
        b = images.shape[0]
        top = max(int(eps_max * 255 + 1e-6), 1)
        steps = sorted({max(1, -(-top * k // grid)) for k in range(1, grid + 1)})  # ceil, unique, ends at top
        already = reached(model(images), labels, kappa)
        lo = torch.zeros(b, dtype=images.dtype, device=images.device)  # largest level known not to flip
        hi = torch.full_like(lo, float("nan"))  # smallest level known to flip
        hi[already] = 0.0
        forwards = torch.ones(b, dtype=torch.int64, device=images.device)
        for level in steps:
            open_ = torch.isnan(hi)
            if not open_.any():
                break
            idx = torch.nonzero(open_).squeeze(1)
            flip = _flipped(model, images[idx], labels[idx], direction[idx], torch.full_like(lo[idx], float(level)), kappa)
            hi[idx[flip]] = float(level)
            lo[idx[~flip]] = float(level)
            forwards[idx] += 1
        for _ in range(refine):
            idx = torch.nonzero(~torch.isnan(hi) & (hi - lo > 1)).squeeze(1)
            if len(idx) == 0:
                break
            mid = torch.floor((lo[idx] + hi[idx]) / 2)
            flip = _flipped(model, images[idx], labels[idx], direction[idx], mid, kappa)
            hi[idx[flip]] = mid[flip]
            lo[idx[~flip]] = mid[~flip]
            forwards[idx] += 1
        return hi / 255, forwards


def run(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: FgsmConfig,
        kappa: float = 0.9) -> AttackResult:
    """FGSM along one gradient sign: minimal at each image's smallest flipping epsilon (``min_eps``),
    confident at the smallest epsilon where a wrong class reaches probability ``kappa`` (failures
    stay at ``search_max``), and at every epsilon of ``cfg.eps`` (the budgets, rounded toward the
    original so that the 8-bit change stays within epsilon). ``cfg`` is resolved."""
    from ..pixels import to_grid
    import torch
    direction = fgsm_direction(model, images, labels)
    top = int(cfg.search_max * 255 + 1e-6) / 255  # the last level tried, where the failures stay

    def at_smallest(goal: float | None) -> tuple[AttackResult, torch.Tensor]:
        eps, forwards = min_flip_eps(model, images, labels, direction, cfg.search_max, cfg.search_grid,
                                   cfg.search_refine, goal)
        adversarial = to_grid(images + eps.nan_to_num(top).view(-1, 1, 1, 1) * direction)
        return AttackResult(adversarial, ~torch.isnan(eps), forwards, {"min_eps": eps}), eps

    minimal, min_eps = at_smallest(None)
    confident, _ = at_smallest(kappa)
    budgets = {}
    for eps in cfg.eps:
        adv = to_grid(fgsm(model, images, labels, eps, direction), images)
        with torch.no_grad():
            wrong = model(adv).argmax(1) != labels
        budgets[eps] = AttackResult(adv, wrong, torch.ones_like(labels), {"min_eps": min_eps})
    return AttackResult(minimal.adversarial, minimal.success, minimal.iterations, minimal.columns, budgets,
                        confident)
