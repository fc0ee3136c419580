"""What the registry knows of every attack, torch-free: its config base, its card (what the site shows
of it), the result type its ``run`` returns, and how an attack on a subset picks its images.

The config dataclasses of the attacks derive from ``AttackConfig`` and are read by compute/config.py,
which must not import torch: the attack files import torch inside their functions only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


class AttackConfig:
    """Base of every attack's frozen config dataclass (one ``[attacks.<name>]`` section)."""

    def resolve(self, channels: int) -> AttackConfig:
        """The config with its data-dependent defaults (0 or empty) filled for ``channels``."""
        return self

    def problems(self) -> list[tuple[str, str]]:
        """(key within the section, or "" for the section; what is wrong) per invalid value."""
        return []

    def subset(self) -> int:
        """Attack only this many test images (0 = all), spread evenly over the test set
        (``subset_positions``): for attacks too costly for every image."""
        return 0

    def matched_to(self, adaptive: AttackConfig) -> AttackConfig:
        """For a baseline (a card's ``baseline``): this config with its unset values taken from the
        adaptive attack's, so that the two run on the same budgets and images. Others: unchanged."""
        return self

    def summary(self) -> str:
        """The settings a reader needs to know what ran ("objective targeted, ..."); "" when none."""
        return ""

    def limit_caption(self) -> str:
        """The limit of the attack's search that a failure did not fool the model within, as a reader
        sees it ("ε ≤ 0.5"; FGSM's fixed budgets ε are another thing, its ``eps``)."""
        return "its budget"


@dataclass(frozen=True)
class Card:
    """What a reader sees of an attack: the manifest carries it, and the site reads it from there."""

    label: str  # its name on the site: "FGSM"
    description: str  # one line: the paper and the threat model
    norm: str  # the norm its budget is in: "linf" or "l2"
    colour: str  # its colour, a name of contract.OKABE_ITO
    adaptive: bool = False  # knows the defence (MC dropout) and attacks through it
    baseline: str = ""  # an adaptive attack's non-adaptive twin: same budgets, steps and images, dropout off
    noise: str = ""  # how its noise control is matched (attacks/noise.py: linf, l2, sparse); "" = its norm
    ranking_column: str = ""  # attacks-table column that ranks images robust -> vulnerable (NaN: never fooled)
    ranking_label: str = ""  # how a reader names that column ("smallest flipping ε (FGSM)")
    ranking_symbol: str = ""  # its symbol beside a value ("ε")
    own_column: str = ""  # the column of the attacks table that holds its own figure (its budget: ε, c, D), if any
    own_symbol: str = ""  # that column's symbol beside a value ("ε", "c")


def subset_positions(total: int, limit: int) -> np.ndarray:
    """The positions, among ``total`` test images, of a subset of ``limit`` (0 or >= total: all):
    evenly spaced, so that a test set stored class by class gives every class its share (the first
    ``limit`` would give the first classes only)."""
    if not 0 < limit < total:
        return np.arange(total)
    return (np.arange(limit, dtype=np.int64) * total) // limit


@dataclass(frozen=True)
class AttackResult:
    """What every attack's ``run`` returns for a batch of B images.

    ``adversarial`` is each image's minimal adversarial (just across the decision boundary);
    ``confident`` the result at the confident operating point (the adversarial class wins with
    probability >= kappa on the dropout-off model), judged the same way. ``columns`` holds the
    attack's own per-image columns of the attacks table (FGSM's ``min_eps``, L-BFGS's ``c``; NaN =
    none). ``budgets`` maps a fixed budget (an L-infinity epsilon) to the result at that budget;
    those rows carry the budget in the table's ``eps`` column.
    """

    adversarial: torch.Tensor  # (B, C, H, W) on the k/255 grid (compute/pixels.py: to_grid)
    success: torch.Tensor  # (B,) bool: the model (dropout off) gets this 8-bit adversarial wrong
    iterations: torch.Tensor  # (B,) int64
    columns: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (B,) float
    budgets: dict[float, AttackResult] = field(default_factory=dict)
    confident: AttackResult | None = None
