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


def ranked(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """The ranking attack's attacks-table rows of one model, reduced to the ranked images: columns
    ``image_id``, ``score`` (the ranking column on successes, +inf for failures) and ``margin`` (the
    true class's probability where a failure stopped, 0 for successes)."""
    rows = rows[(rows["operating_point"] == MINIMAL) & rows["clean_correct"].astype(bool)]
    success = rows["success"].astype(bool)
    return pd.DataFrame({"image_id": rows["image_id"].to_numpy(),
                         "score": rows[column].where(success, float("inf")).to_numpy(dtype=float),
                         "margin": rows["adv_prob"].where(~success, 0.0).to_numpy(dtype=float)})


def extremes(ranked_rows: pd.DataFrame, k: int) -> tuple[list[int], list[int]]:
    """(the ``k`` most robust image ids, most robust first; the ``k`` most vulnerable, most vulnerable
    first) of ``ranked`` rows, never one image on both sides; ties by image id."""
    robust = ranked_rows.sort_values(["score", "margin", "image_id"], ascending=[False, False, True],
                                     kind="stable").head(k)
    rest = ranked_rows[~ranked_rows["image_id"].isin(robust["image_id"])]
    vulnerable = rest.sort_values(["score", "image_id"], kind="stable").head(k)
    return robust["image_id"].tolist(), vulnerable["image_id"].tolist()
