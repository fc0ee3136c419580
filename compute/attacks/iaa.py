"""IAA, the imperceptible adversarial attack of Luo, Liu, Wei & Xu (AAAI 2018), batched over images.

Threat model: white-box, untargeted (or targeted), perceptual budget D_max in pixel space.
  Gap(X) = P_t - log(sum_{i != t} exp(k P_i)) / k       (P: softmax probabilities, t: true class)
  SD(x_i): std of pixel i's window x window neighbourhood in the original image; Sen(x_i) = 1 / SD(x_i)
  priority_i = |dGap/dx_i| / Sen(x_i)
Each iteration moves the m pixels of highest priority by delta against the gradient of Gap (towards
misclassification), rounded to the 8-bit grid and clipped to [0, 1], and adds sum |change_i| * Sen(x_i)
to the perceptual distance D. An image stops when it is misclassified by more than ``margin``
(max_{i != t} P_i - P_t > margin), when the next step would take D past D_max (that step is not
taken, so D <= D_max), or when no pixel can move. Flat pixels (SD = 0, infinite sensitivity) never move.
Confident operating point (the robust goal of the paper): the same walk goes on past the minimal
adversarial until a wrong class wins with probability >= kappa, within the same D_max; one run
yields both points, the minimal one as a snapshot taken when the image first crossed.
Tensors: images (B, C, H, W) in [0, 1], labels (B,) int64; the model is used in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .spec import AttackConfig, AttackResult, Card

if TYPE_CHECKING:  # torch is imported where it runs: the configs above must load without it
    import torch
    from torch import nn


@dataclass(frozen=True)
class IaaConfig(AttackConfig):
    k: float = 10.0  # sharpness of the smooth maximum in Gap(X)
    m: int = 10  # pixels perturbed per iteration
    delta: float = 0.0  # step per pixel per iteration (0 = 0.1 grey, 8/255 colour)
    d_max: float = 300.0  # perceptual-distance budget D_max
    window: int = 3  # neighbourhood side for SD(x_i); odd
    margin: float = 0.0  # success needs max_{i != t} P_i - P_t above this
    max_iterations: int = 500  # hard cap per image

    def resolve(self, channels: int) -> IaaConfig:
        """Fill the defaults that depend on the data: greyscale (1 channel) or colour."""
        return replace(self, delta=self.delta or (0.1 if channels == 1 else 8 / 255))

    def problems(self) -> list[tuple[str, str]]:
        """(key, what is wrong) for every invalid value; empty when valid."""
        out = []
        if self.k <= 0 or self.m < 1 or self.delta < 0 or self.d_max <= 0 or self.max_iterations < 1:
            out.append(("", "needs k > 0, m >= 1, delta >= 0, d_max > 0 and max_iterations >= 1"))
        if self.window < 3 or self.window % 2 == 0:
            out.append(("window", f"must be an odd number >= 3, got {self.window}"))
        return out

    def limit_caption(self) -> str:
        return f"D ≤ {self.d_max:g}"


CARD = Card("IAA", "Luo et al. 2018: a few pixels where the eye is least sensitive, perceptual budget D_max",
            norm="l2", noise="sparse", colour="bluish_green", ranking_column="perceptual_distance",
            ranking_label="smallest perceptual distance D (IAA)", ranking_symbol="D",
            own_column="perceptual_distance", own_symbol="D")


@dataclass(frozen=True)
class IaaResult:
    adversarial: torch.Tensor  # (B, C, H, W)
    success: torch.Tensor  # (B,) bool
    distance: torch.Tensor  # (B,) accumulated perceptual distance D
    iterations: torch.Tensor  # (B,) int64
    confident: "IaaResult | None" = None  # with kappa: where the walk went on to


def iaa(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: float = 10.0, m: int = 10,
        delta: float = 0.1, d_max: float = 300.0, window: int = 3, margin: float = 0.0,
        max_iterations: int = 500, target: torch.Tensor | None = None, kappa: float | None = None) -> IaaResult:
    """Run IAA on a batch; every image keeps its own state and stops on its own. With ``kappa`` the
    walk goes on to the confident point (returned as ``confident``); the result is the minimal one."""
    from ..pixels import to_grid
    import torch
    from .common import sensitivity, smooth_gap, true_gap
    from torch.nn import functional as F
    b = images.shape[0]
    sen, flat = sensitivity(images, window)
    sd = torch.where(flat, torch.zeros_like(sen), 1.0 / sen)
    adv = images.clone()
    distance = torch.zeros(b, dtype=torch.float64, device=images.device)
    iterations = torch.zeros(b, dtype=torch.int64, device=images.device)
    success = torch.zeros(b, dtype=torch.bool, device=images.device)  # the minimal goal, met at the snapshot
    sure = torch.zeros(b, dtype=torch.bool, device=images.device)  # the confident goal
    first = (adv.clone(), distance.clone(), iterations.clone())  # state when the minimal goal was first met
    active = torch.ones(b, dtype=torch.bool, device=images.device)
    goal = labels if target is None else target

    def goals(probs: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(minimal goal met, confident goal met) for the images ``idx`` at ``probs``."""
        if target is None:
            minimal = -true_gap(probs, labels[idx]) > margin  # another class beats the label by the margin
            wrong_top = probs.masked_fill(F.one_hot(labels[idx], probs.shape[1]).bool(), -1.0).amax(1)
        else:
            minimal = probs.argmax(1) == target[idx]
            wrong_top = probs.gather(1, target[idx, None]).squeeze(1)
        return minimal, minimal & (wrong_top >= (2.0 if kappa is None else kappa))

    def snapshot(rows: torch.Tensor) -> None:
        first[0][rows], first[1][rows], first[2][rows] = adv[rows], distance[rows], iterations[rows]

    for _ in range(max_iterations + 1):
        idx = torch.nonzero(active).squeeze(1)
        if len(idx) == 0:
            break
        x = adv[idx].detach().requires_grad_(True)
        with torch.enable_grad():
            probs = torch.softmax(model(x), dim=1)
            gap = smooth_gap(probs, goal[idx], k)
            (grad,) = torch.autograd.grad(gap.sum(), x)
        with torch.no_grad():
            met, met_sure = goals(probs, idx)
            newly = met & ~success[idx]
            snapshot(idx[newly])
            success[idx[newly]] = True
            sure[idx[met_sure]] = True
            done = met_sure if kappa is not None else met
            step = -grad.sign() if target is None else grad.sign()  # lower Gap(t) / raise Gap(target)
            priority = (grad.abs() * sd[idx]).flatten(1)
            blocked = (flat[idx] | (grad == 0) | ((step > 0) & (x >= 1.0)) | ((step < 0) & (x <= 0.0))).flatten(1)
            priority = priority.masked_fill(blocked, -1.0)
            top = priority.topk(min(m, priority.shape[1]), dim=1)
            movable = top.values >= 0  # fewer than m movable pixels: move only those
            stuck = ~movable.any(dim=1)
            x_flat = x.detach().flatten(1)
            old = x_flat.gather(1, top.indices)
            # Moved pixels land on the 8-bit grid, so the image judged is the image saved.
            new = to_grid(old + delta * step.flatten(1).gather(1, top.indices))
            new = torch.where(movable, new, old)
            gained = ((new - old).abs() * sen[idx].flatten(1).gather(1, top.indices).nan_to_num(posinf=0.0)).sum(1)
            over = distance[idx] + gained > d_max * (1 + 1e-9)  # a step past D_max is not taken
            go = ~done & ~stuck & ~over & (iterations[idx] < max_iterations)
            rows = idx[go]
            updated = x_flat[go].scatter(1, top.indices[go], new[go])
            adv[rows] = updated.view(-1, *images.shape[1:])
            distance[rows] += gained[go].double()
            iterations[rows] += 1
            active[idx[~go]] = False
    # Images that stopped on the iteration cap may have met a goal with their last step.
    with torch.no_grad():
        check = torch.nonzero(~success if kappa is None else ~success | ~sure).squeeze(1)
        if len(check):
            met, met_sure = goals(torch.softmax(model(adv[check]), dim=1), check)
            newly = met & ~success[check]
            snapshot(check[newly])
            success[check[newly]] = True
            sure[check[met_sure]] = True
    # Images that never met the minimal goal keep where they stopped, as a failure.
    snapshot(torch.nonzero(~success).squeeze(1))
    minimal = IaaResult(first[0], success, first[1].float(), first[2])
    if kappa is None:
        return minimal
    return IaaResult(first[0], success, first[1].float(), first[2],
                     IaaResult(adv, sure, distance.float(), iterations))


def run(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, cfg: IaaConfig,
        kappa: float = 0.9) -> AttackResult:
    """IAA where each image first met the goal (minimal) and where the walk went on to probability
    ``kappa`` (confident); failures stay where they stopped (D_max, no movable pixel, iteration cap)."""
    r = iaa(model, images, labels, cfg.k, cfg.m, cfg.delta, cfg.d_max, cfg.window, cfg.margin, cfg.max_iterations,
            kappa=kappa)
    sure = r.confident
    assert sure is not None
    return AttackResult(r.adversarial, r.success, r.iterations,
                        confident=AttackResult(sure.adversarial, sure.success, sure.iterations))
