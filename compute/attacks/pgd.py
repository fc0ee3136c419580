"""PGD, projected gradient descent on an L-infinity ball (Madry et al., ICLR 2018): the adaptive
attacker's non-adaptive baseline.

Threat model: white-box against the model with dropout off (it knows nothing of MC dropout),
untargeted, L-infinity budget eps: ``steps`` steps of ``step_size`` along the sign of the gradient of
the cross-entropy, each projected back onto the ball and into [0, 1], no random start (the basic
iterative method of Kurakin et al. 2017). Its budgets, steps and images are EOT-PGD's by default, so
that "what does knowing the defence add" is a paired comparison on the same images
(compute/detection.py, the adaptive table). Per image, the minimal point is the smallest budget that
fools, the confident point the smallest that reaches probability kappa; failures keep the largest.
Tensors: images (B, C, H, W) in [0, 1], labels (B,) int64.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .eot_pgd import COLOUR_EPS, GREY_EPS, MAX_IMAGES, STEPS
from .spec import AttackConfig, AttackResult, Card

if TYPE_CHECKING:  # torch is imported where it runs: the config above must load without it
    import torch
    from torch import nn


@dataclass(frozen=True)
class PgdConfig(AttackConfig):
    # Unset (empty, 0 or -1), each of these follows the adaptive attacker it is the baseline of (EOT-PGD):
    # the same budgets, steps, step size and images, so that the two compare image by image.
    eps: tuple[float, ...] = ()  # L-infinity budgets; () = EOT-PGD's (0.1, 0.2, 0.3 for MNIST-like data)
    steps: int = 0  # steps per budget; 0 = EOT-PGD's (10)
    step_size: float = 0.0  # step per pixel per step; 0 = EOT-PGD's (2.5 * eps / steps when it has none)
    max_images: int = -1  # attack only N test images, evenly spaced (0 = all); -1 = EOT-PGD's subset (200)

    def resolve(self, channels: int) -> PgdConfig:
        """Fill the defaults that depend on the data: greyscale (1 channel) or colour."""
        return replace(self, eps=self.eps or (GREY_EPS if channels == 1 else COLOUR_EPS),
                       steps=self.steps or STEPS, max_images=MAX_IMAGES if self.max_images < 0 else self.max_images)

    def matched_to(self, adaptive: AttackConfig) -> PgdConfig:
        """This config with every unset value taken from the adaptive attacker's (``adaptive``, unresolved
        values of this one decided before ``resolve``)."""
        return replace(self, eps=self.eps or adaptive.eps, steps=self.steps or adaptive.steps,
                       step_size=self.step_size or adaptive.step_size,
                       max_images=adaptive.max_images if self.max_images < 0 else self.max_images)

    def problems(self) -> list[tuple[str, str]]:
        out = [("eps", f"values must be > 0 (an L-infinity budget in [0, 1]), got {eps}") for eps in self.eps if eps <= 0]
        if self.steps < 0 or self.step_size < 0 or self.max_images < -1:
            out.append(("", "needs steps >= 0 (0 = EOT-PGD's), step_size >= 0 and max_images >= -1 (-1 = EOT-PGD's)"))
        return out

    def subset(self) -> int:
        return self.max_images

    def limit_caption(self) -> str:
        return f"ε ≤ {max(self.eps):.4g}" if self.eps else "its budget"


CARD = Card("PGD", "Madry et al. 2018: L∞ projected gradient steps on the cross-entropy, dropout off",
            norm="linf", colour="black", ranking_column="min_eps", ranking_label="smallest fooling ε (PGD)",
            ranking_symbol="ε", own_column="min_eps", own_symbol="ε")


def pgd(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float, steps: int = STEPS,
        step_size: float = 0.0) -> torch.Tensor:
    """PGD adversarials at L-infinity budget ``eps`` against ``model`` in eval mode (dropout off),
    8-bit with the change rounded toward the original."""
    from torch.nn import functional as F
    from .common import input_gradient, linf_pgd
    model.eval()

    def ascent(step: int, x: torch.Tensor) -> torch.Tensor:
        return input_gradient(model, x, lambda logits: F.cross_entropy(logits, labels, reduction="none"))[1]

    return linf_pgd(images, eps, steps, step_size or 2.5 * eps / steps, ascent)


def run(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: PgdConfig,
        kappa: float = 0.9) -> AttackResult:
    """PGD at every budget of ``cfg.eps``, and per image the smallest budget that fools (minimal) and
    that reaches probability ``kappa`` (confident); ``min_eps`` is that budget (NaN: none)."""
    from .common import over_budgets
    return over_budgets(model, images, labels, cfg.eps, kappa, cfg.steps,
                        lambda eps: pgd(model, images, labels, eps, cfg.steps, cfg.step_size))
