"""Every statistic the site shows about attacks, computed once here and stored in tables (numpy and
pandas only): the site builder selects, formats and plots them, it never computes them.

- ``attack_summary``: per (model, attack, operating point minimal | confident) over the clean-correct
  images: success (with its Wilson 95% interval) and failure rates, mean distortions and uncertainty of the successful ones, mean
  iterations; the images wrong before the attack as a count. (Detection: compute/detection.py.)
- ``robustness``: accuracy (dropout off) under the ranking attack (``attacks.ranking``, FGSM by
  default) at each of its budgets over all images, with the clean accuracy as epsilon 0.
- ``success_rates``: success rate per (model, attack, budget, class) over the clean-correct images.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import BUDGET, CLEAN, CONFIDENT, MINIMAL, condition_name
from .metrics import wilson

DISTORTIONS = ("l2", "linf", "perceptual_distance", "flat_pixels_changed", "l0")


def attack_summary(attacks: pd.DataFrame, uncertainty: pd.DataFrame, attack_names: list[str],
                   models: list[str]) -> pd.DataFrame:
    """Per (model, attack, operating point). Populations are named: ``n_attacked`` counts the
    clean-correct images (the attacked ones); ``n_wrong_before`` those wrong before the attack (not
    attacked); successes and failures split ``n_attacked``. Distortions and the adversarial
    uncertainty are means over the successes."""
    rows = []
    for model in models:
        unc = uncertainty[uncertainty["model"] == model].set_index(["condition", "image_id"])
        for attack in attack_names:
            for point in (MINIMAL, CONFIDENT):
                r = attacks[(attacks["model"] == model) & (attacks["attack"] == attack)
                            & (attacks["operating_point"] == point)]
                attacked = r[r["clean_correct"]]
                hit = attacked[attacked["success"]]
                clean = unc.loc[CLEAN].reindex(attacked["image_id"])
                adv = unc.loc[condition_name(attack, point)].reindex(hit["image_id"]) if len(hit) else unc.iloc[:0]
                n = len(attacked)
                rows.append({
                    "model": model, "attack": attack, "operating_point": point, "n_attacked": n,
                    "n_wrong_before": int((~r["clean_correct"]).sum()), "n_success": len(hit),
                    "success_rate": len(hit) / n if n else float("nan"),
                    **dict(zip(("success_low", "success_high"), wilson(len(hit), n))),
                    "failure_rate": (n - len(hit)) / n if n else float("nan"),
                    **{f"mean_{d}": float(hit[d].mean()) if len(hit) else float("nan") for d in DISTORTIONS},
                    "mean_iterations": float(attacked["iterations"].mean()) if n else float("nan"),
                    "mean_entropy_clean": float(clean["entropy"].mean()) if n else float("nan"),
                    "mean_entropy": float(adv["entropy"].mean()) if len(hit) else float("nan"),
                    "mean_fooled_share": float(adv["fooled_share"].mean()) if len(hit) else float("nan"),
                })
    return pd.DataFrame(rows)


def robustness(attacks: pd.DataFrame, attack: str | None, clean_accuracy: dict[str, float],
               labels: pd.Series) -> pd.DataFrame:
    """Accuracy (dropout off) under ``attack`` (the ranking attack; None: no rows) per (model, eps) over
    the images it attacked (all of them, but an ensemble's subset), the ones wrong before the attack
    counting as wrong; eps = 0 is the clean accuracy on those same images, so that one curve has one N.
    ``clean_accuracy``: model key -> accuracy on every image, in model order; ``labels``: image_id -> label."""
    rows = attacks[(attacks["attack"] == attack) & (attacks["operating_point"] == BUDGET)]
    if attack is None or rows.empty:
        return pd.DataFrame(columns=["model", "attack", "eps", "accuracy", "n_images"])
    correct = rows["adv_pred"].to_numpy() == rows["image_id"].map(labels).to_numpy()
    curve = rows.assign(correct=correct).groupby(["model", "eps"], as_index=False, sort=False).agg(
        accuracy=("correct", "mean"), n_images=("correct", "size"))
    first = rows[rows["eps"] == rows.groupby("model")["eps"].transform("min")]
    seen = first.groupby("model")["clean_correct"].agg(["mean", "size"])
    zero = pd.DataFrame({"model": list(clean_accuracy), "eps": 0.0,
                         "accuracy": [clean_accuracy[k] if k not in seen.index or seen.loc[k, "size"] == len(labels)
                                      else float(seen.loc[k, "mean"]) for k in clean_accuracy],
                         "n_images": [len(labels) if k not in seen.index else int(seen.loc[k, "size"])
                                      for k in clean_accuracy]})
    order = {key: k for k, key in enumerate(clean_accuracy)}
    out = pd.concat([zero, curve], ignore_index=True)
    out = out.iloc[np.lexsort((out["eps"].to_numpy(), out["model"].map(order).to_numpy()))]
    return out.assign(attack=attack).reset_index(drop=True)


def success_rates(attacks: pd.DataFrame, labels: pd.Series, class_names: list[str]) -> pd.DataFrame:
    """Success rate per (model, attack, operating_point, eps, class_name) over the clean-correct
    images of the class: every fixed budget, and the minimal and confident adversarials of the attacks
    without budgets. A minimal adversarial with a search up to a budget succeeds whenever a flip
    exists, so for attacks with budgets only the budgets say something here. ``labels``: image_id -> label."""
    budget = attacks["operating_point"] == BUDGET
    with_budgets = set(attacks.loc[budget, "attack"])
    rows = attacks[(budget | ~attacks["attack"].isin(with_budgets)) & attacks["clean_correct"]]
    frame = pd.DataFrame({"model": rows["model"].to_numpy(), "attack": rows["attack"].to_numpy(),
                          "operating_point": rows["operating_point"].to_numpy(), "eps": rows["eps"].to_numpy(),
                          "class_name": np.asarray(class_names, dtype=object)[rows["image_id"].map(labels).to_numpy()],
                          "success": rows["success"].to_numpy()})
    out = frame.groupby(["model", "attack", "operating_point", "eps", "class_name"], as_index=False, sort=False,
                        dropna=False).agg(
        success_rate=("success", "mean"), n_attacked=("success", "size"))
    return out.reset_index(drop=True)
