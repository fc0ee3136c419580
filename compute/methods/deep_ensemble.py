"""Deep ensemble (Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017): M copies of the network, each
trained on the whole training set from its own seed (initial weights and batch order); the prediction
is the mean of their softmax outputs, and their disagreement is the uncertainty.

Members are trained with the run's first dropout rate (as regularisation, as the MC-dropout model of
that rate is) and run with dropout off. How an ensemble is run is compute/methods/ensemble.py.
"""
from __future__ import annotations

from typing import Any

from .ensemble import member_plan, pass_probs  # noqa: F401 - the registry's entry

SEED_OFFSET = 100  # member k is trained with seed run.seed + 100 + k: no MC-dropout model shares it


def plan(cfg: Any) -> dict[str, dict[str, Any]]:
    """One model, tagged ``deep5`` for M = 5: M members on the full training set, seeds 100 + k."""
    m = cfg.uncertainty.members
    return {f"deep{m}": {"label": f"deep ensemble, M = {m}", "dropout_p": None,
                         "members": member_plan(SEED_OFFSET, m, 1.0, cfg.model.dropout[0])}}
