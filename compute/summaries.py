"""Every statistic the site shows about attacks, computed once here and stored in tables (numpy and
pandas only): the site builder selects, formats and plots them, it never computes them.

- ``attack_summary``: per (model, attack) over the minimal adversarials: success rate, mean
  distortions of the successful ones, mean iterations, and the AUROC of MC-dropout entropy and
  mutual information separating adversarial from clean images.
- ``robustness``: accuracy (dropout off) under FGSM at each configured epsilon, with the clean
  accuracy as epsilon 0.
- ``success_rates``: success rate per (model, attack, budget, class).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import auroc

DISTORTIONS = ("l2", "linf", "perceptual_distance", "flat_pixels_changed", "l0")


def attack_summary(attacks: pd.DataFrame, uncertainty: pd.DataFrame, attack_names: list[str],
                   dropout_ps: list[float]) -> pd.DataFrame:
    rows = []
    for p in dropout_ps:
        minimal = attacks[(attacks["dropout_p"] == p) & attacks["minimal"]]
        unc = uncertainty[uncertainty["dropout_p"] == p]
        clean = unc[unc["condition"] == "clean"]
        for attack in attack_names:
            r = minimal[minimal["attack"] == attack]
            hit = r[r["success"]]
            adv = unc[unc["condition"] == attack]
            rows.append({
                "dropout_p": p, "attack": attack, "images": len(r), "success_rate": float(r["success"].mean()),
                **{f"mean_{d}": float(hit[d].mean()) if len(hit) else float("nan") for d in DISTORTIONS},
                "mean_iterations": float(r["iterations"].mean()),
                "entropy_auroc": auroc(clean["entropy"].to_numpy(), adv["entropy"].to_numpy()),
                "mutual_info_auroc": auroc(clean["mutual_info"].to_numpy(), adv["mutual_info"].to_numpy()),
            })
    return pd.DataFrame(rows)


def robustness(attacks: pd.DataFrame, clean_accuracy: dict[float, float], images: int) -> pd.DataFrame:
    """Accuracy under FGSM per (dropout_p, eps) over all images; eps = 0 is the clean accuracy."""
    rows = attacks[(attacks["attack"] == "fgsm") & attacks["eps"].notna()]
    curve = rows.groupby(["dropout_p", "eps"], as_index=False).agg(success=("success", "mean"),
                                                                   images=("success", "size"))
    curve["accuracy"] = 1.0 - curve.pop("success")
    zero = pd.DataFrame({"dropout_p": list(clean_accuracy), "eps": 0.0, "accuracy": list(clean_accuracy.values()),
                         "images": images})
    out = pd.concat([zero, curve], ignore_index=True).sort_values(["dropout_p", "eps"], kind="stable")
    return out.reset_index(drop=True)


def success_rates(attacks: pd.DataFrame, labels: pd.Series, class_names: list[str]) -> pd.DataFrame:
    """Success rate per (dropout_p, attack, eps, class_name): every fixed budget (eps), and the minimal
    adversarials (eps null) of the attacks without budgets. FGSM's minimal adversarial succeeds
    whenever a flip exists, so its rate says nothing here. ``labels``: image_id -> label."""
    with_budgets = set(attacks.loc[attacks["eps"].notna(), "attack"])
    rows = attacks[attacks["eps"].notna() | ~attacks["attack"].isin(with_budgets)]
    frame = pd.DataFrame({"dropout_p": rows["dropout_p"].to_numpy(), "attack": rows["attack"].to_numpy(),
                          "eps": rows["eps"].to_numpy(),
                          "class_name": np.asarray(class_names, dtype=object)[rows["image_id"].map(labels).to_numpy()],
                          "success": rows["success"].to_numpy()})
    out = frame.groupby(["dropout_p", "attack", "eps", "class_name"], as_index=False, sort=False, dropna=False).agg(
        success_rate=("success", "mean"), images=("success", "size"))
    return out.reset_index(drop=True)
