"""The attacks: a table of contents, torch-free (compute/config.py reads the configs from it).

Every attack is one file with a frozen config dataclass (its ``[attacks.<name>]`` section), a
``CARD`` (what the site shows of it: label, description, norm, colour, whether it is adaptive) and
``run(model, images, labels, cfg, kappa) -> AttackResult``. Adding an attack is that file and one
line in ``ATTACKS``: the config section, its validation, the CLI's choices, the pipeline's parts, the
manifest and every page follow from the registry. How an attack is applied to a whole test set (operating
points, budgets, noise controls) is compute/attacks/runner.py.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from ..contract import OKABE_ITO, tint
from . import eot_pgd, fgsm, iaa, lbfgs, pgd
from .spec import AttackConfig, AttackResult, Card

if TYPE_CHECKING:
    from ..config import AttacksConfig


@dataclass(frozen=True)
class Attack:
    config: type[AttackConfig]  # its config section's dataclass
    run: Callable[..., AttackResult]  # run(model=, images=, labels=, cfg=, kappa=)
    card: Card


ATTACKS: dict[str, Attack] = {
    "fgsm": Attack(fgsm.FgsmConfig, fgsm.run, fgsm.CARD),
    "lbfgs": Attack(lbfgs.LbfgsConfig, lbfgs.run, lbfgs.CARD),
    "iaa": Attack(iaa.IaaConfig, iaa.run, iaa.CARD),
    "eot_pgd": Attack(eot_pgd.EotPgdConfig, eot_pgd.run, eot_pgd.CARD),
    "pgd": Attack(pgd.PgdConfig, pgd.run, pgd.CARD),
}


def resolve(cfg: AttacksConfig, channels: int) -> AttacksConfig:
    """The attacks config with every attack's data-dependent defaults filled (greyscale vs colour), each
    baseline first matched to its adaptive attack (same budgets, steps and images)."""
    sections = {name: getattr(cfg, name) for name in ATTACKS}
    for name, attack in ATTACKS.items():
        if attack.card.baseline in sections:
            sections[attack.card.baseline] = sections[attack.card.baseline].matched_to(sections[name])
    return replace(cfg, **{name: own.resolve(channels) for name, own in sections.items()})


def cards(cfg: AttacksConfig) -> dict[str, dict[str, Any]]:
    """What the manifest says of each enabled attack (``cfg`` resolved), so that the site knows attacks
    by what they are, never by name."""
    out = {}
    for name in cfg.enabled:
        card, own = ATTACKS[name].card, getattr(cfg, name)
        colour = OKABE_ITO[card.colour]
        out[name] = {"label": card.label, "description": card.description, "norm": card.norm,
                     "noise": card.noise or card.norm,
                     "adaptive": card.adaptive, "baseline": card.baseline, "settings": own.summary(),
                     "colour": colour, "confident_colour": tint(colour),
                     "limit_caption": own.limit_caption(), "subset": own.subset(),
                     "ranking_column": card.ranking_column, "ranking_label": card.ranking_label,
                     "ranking_symbol": card.ranking_symbol, "own_column": card.own_column,
                     "own_symbol": card.own_symbol}
    return out
