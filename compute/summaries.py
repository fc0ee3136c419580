"""Every statistic the site shows about attacks, computed once here and stored in tables (numpy and
pandas only): the site builder selects, formats and plots them, it never computes them.

- ``attack_summary``: per (model, attack, operating point minimal | confident) over the clean-correct
  images: success and failure rates, mean distortions and uncertainty of the successful ones, mean
  iterations; the images wrong before the attack as a count. (Detection: compute/detection.py.)
- ``robustness``: accuracy (dropout off) under FGSM at each configured epsilon over all images, with
  the clean accuracy as epsilon 0.
- ``success_rates``: success rate per (model, attack, budget, class) over the clean-correct images.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import condition_name

DISTORTIONS = ("l2", "linf", "perceptual_distance", "flat_pixels_changed", "l0")


def attack_summary(attacks: pd.DataFrame, uncertainty: pd.DataFrame, attack_names: list[str],
                   dropout_ps: list[float]) -> pd.DataFrame:
    """Per (model, attack, operating point). Populations are named: ``images`` counts the clean-correct
    images (the attacked ones); ``wrong_before`` those wrong before the attack (not attacked);
    successes and failures split ``images``. Distortions and the adversarial uncertainty are means
    over the successes."""
    rows = []
    for p in dropout_ps:
        unc = uncertainty[uncertainty["dropout_p"] == p].set_index(["condition", "image_id"])
        for attack in attack_names:
            for point in ("minimal", "confident"):
                r = attacks[(attacks["dropout_p"] == p) & (attacks["attack"] == attack)
                            & (attacks["operating_point"] == point)]
                attacked = r[r["clean_correct"]]
                hit = attacked[attacked["success"]]
                clean = unc.loc["clean"].reindex(attacked["image_id"])
                adv = unc.loc[condition_name(attack, point)].reindex(hit["image_id"]) if len(hit) else unc.iloc[:0]
                n = len(attacked)
                rows.append({
                    "dropout_p": p, "attack": attack, "operating_point": point, "images": n,
                    "wrong_before": int((~r["clean_correct"]).sum()), "successes": len(hit),
                    "success_rate": len(hit) / n if n else float("nan"),
                    "failure_rate": (n - len(hit)) / n if n else float("nan"),
                    **{f"mean_{d}": float(hit[d].mean()) if len(hit) else float("nan") for d in DISTORTIONS},
                    "mean_iterations": float(attacked["iterations"].mean()) if n else float("nan"),
                    "mean_entropy_clean": float(clean["entropy"].mean()) if n else float("nan"),
                    "mean_entropy": float(adv["entropy"].mean()) if len(hit) else float("nan"),
                    "mean_fooled_share": float(adv["fooled_share"].mean()) if len(hit) else float("nan"),
                })
    return pd.DataFrame(rows)


def robustness(attacks: pd.DataFrame, clean_accuracy: dict[float, float], labels: pd.Series) -> pd.DataFrame:
    """Accuracy (dropout off) under FGSM per (dropout_p, eps) over all images, the ones wrong before
    the attack counting as wrong; eps = 0 is the clean accuracy. ``labels``: image_id -> label."""
    rows = attacks[(attacks["attack"] == "fgsm") & (attacks["operating_point"] == "budget")]
    correct = rows["adv_pred"].to_numpy() == rows["image_id"].map(labels).to_numpy()
    curve = rows.assign(correct=correct).groupby(["dropout_p", "eps"], as_index=False).agg(
        accuracy=("correct", "mean"), images=("correct", "size"))
    zero = pd.DataFrame({"dropout_p": list(clean_accuracy), "eps": 0.0, "accuracy": list(clean_accuracy.values()),
                         "images": len(labels)})
    out = pd.concat([zero, curve], ignore_index=True).sort_values(["dropout_p", "eps"], kind="stable")
    return out.reset_index(drop=True)


def success_rates(attacks: pd.DataFrame, labels: pd.Series, class_names: list[str]) -> pd.DataFrame:
    """Success rate per (dropout_p, attack, operating_point, eps, class_name) over the clean-correct
    images of the class: every fixed budget, and the minimal and confident adversarials of the attacks
    without budgets. A minimal adversarial with a search up to a budget succeeds whenever a flip
    exists, so for attacks with budgets only the budgets say something here. ``labels``: image_id -> label."""
    budget = attacks["operating_point"] == "budget"
    with_budgets = set(attacks.loc[budget, "attack"])
    rows = attacks[(budget | ~attacks["attack"].isin(with_budgets)) & attacks["clean_correct"]]
    frame = pd.DataFrame({"dropout_p": rows["dropout_p"].to_numpy(), "attack": rows["attack"].to_numpy(),
                          "operating_point": rows["operating_point"].to_numpy(), "eps": rows["eps"].to_numpy(),
                          "class_name": np.asarray(class_names, dtype=object)[rows["image_id"].map(labels).to_numpy()],
                          "success": rows["success"].to_numpy()})
    out = frame.groupby(["dropout_p", "attack", "operating_point", "eps", "class_name"], as_index=False, sort=False,
                        dropna=False).agg(
        success_rate=("success", "mean"), images=("success", "size"))
    return out.reset_index(drop=True)
