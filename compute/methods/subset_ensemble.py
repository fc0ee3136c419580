"""Subset ensemble (the seed's "different dataset percentage"; bagging without replacement): M copies
of the network, each trained on its own random share of the training set (``uncertainty.subset_share``,
default 50%, drawn by the member's seed); the prediction is the mean of their softmax outputs.

Members are trained with the run's first dropout rate and run with dropout off; each checkpoint
records the share it saw (``n_train_images``, ``train_ids_sha256``). How an ensemble is run is
compute/methods/ensemble.py.
"""
from __future__ import annotations

from typing import Any

from .ensemble import member_plan, pass_probs  # noqa: F401 - the registry's entry

SEED_OFFSET = 200  # member k: seed run.seed + 200 + k, for its weights, batch order and share alike


def plan(cfg: Any) -> dict[str, dict[str, Any]]:
    """One model, tagged ``subset5`` for M = 5: M members, each on its own share of the training set."""
    m, share = cfg.uncertainty.members, cfg.uncertainty.subset_share
    return {f"subset{m}": {"label": f"subset ensemble, M = {m} × {share:.0%}", "dropout_p": None,
                           "members": member_plan(SEED_OFFSET, m, share, cfg.model.dropout[0])}}
