"""Which images are robust and which vulnerable: one ranking for the good & bad page and the activation
maps (pandas only; both stages use it).

The ranking attack (``attacks.ranking``, FGSM by default) ranks the images the model gets right by its
card's ranking column on its minimal adversarials (FGSM: the smallest flipping epsilon): a smaller value
is more vulnerable. An image it never fooled within its limit is more robust than any it fooled, and
among those a higher probability of the true class where the attack stopped (``adv_prob`` of the
failure) is more robust. Images wrong before the attack are not ranked.
"""
from __future__ import annotations

import pandas as pd

from .contract import MINIMAL


def ranked(rows: pd.DataFrame, column: str, point: str = MINIMAL, labels: pd.Series | None = None) -> pd.DataFrame:
    """The ranking attack's attacks-table rows of one model at ``point`` (its minimal adversarials by
    default), reduced to the ranked images: columns ``image_id``, ``score`` (the ranking column on
    successes, +inf for failures) and ``margin`` (among failures, higher = more robust: the true class's
    probability where the attack stopped; 0 for successes).

    At the confident point a failure may have fooled the model without confidence (a wrong class below
    κ); with ``labels`` (image_id -> true class) such a failure ranks below every image never fooled at
    all, by how low that wrong class stayed (margin 1 − its probability, against 1 + the true class's
    probability for the others). Without ``labels`` every failure counts as never fooled."""
    rows = rows[(rows["operating_point"] == point) & rows["clean_correct"].astype(bool)]
    success = rows["success"].astype(bool)
    margin = rows["adv_prob"].astype(float)
    if labels is not None:
        fooled = rows["adv_pred"].to_numpy() != rows["image_id"].map(labels).to_numpy()
        margin = margin.where(fooled, 1.0 + margin).where(~fooled, 1.0 - margin)
    return pd.DataFrame({"image_id": rows["image_id"].to_numpy(),
                         "score": rows[column].where(success, float("inf")).to_numpy(dtype=float),
                         "margin": margin.where(~success, 0.0).to_numpy(dtype=float)})


def extremes(ranked_rows: pd.DataFrame, k: int) -> tuple[list[int], list[int]]:
    """(the ``k`` most robust image ids, most robust first; the ``k`` most vulnerable, most vulnerable
    first) of ``ranked`` rows, never one image on both sides; ties by image id."""
    robust = ranked_rows.sort_values(["score", "margin", "image_id"], ascending=[False, False, True],
                                     kind="stable").head(k)
    rest = ranked_rows[~ranked_rows["image_id"].isin(robust["image_id"])]
    vulnerable = rest.sort_values(["score", "image_id"], kind="stable").head(k)
    return robust["image_id"].tolist(), vulnerable["image_id"].tolist()
