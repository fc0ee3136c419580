"""The uncertainty methods compared at equal cost: the ``methods`` table (numpy and pandas only).

The seed chose MC dropout over ensembles "as it's more computationally efficient while still providing
similar benefits". Each row is one way of predicting with uncertainty, on the same clean test images:
MC dropout at T passes and at T = M (its first M passes, as many as an ensemble has members), and each
ensemble. Its columns say what it costs (training seconds and images seen, inference passes and
measured seconds per image) and what it gives:
- accuracy, ECE and NLL of the mean prediction, each with a percentile-bootstrap interval over images,
  and the paired difference from the reference row (MC dropout at T passes, first dropout rate);
- detection: AUROC(entropy) − AUROC(max_prob), the baseline being one model's plain softmax with dropout
  off, with its paired image-level interval, (1) on the confident adversarials of every non-adaptive
  attack, pooled over the test images every model was attacked on, and (2) on the adaptive attacker's
  adversarials at its largest budget. Beside (1), the AUROC of the method's own mean max-probability.
Every bootstrap of one run draws the same images (one seed), so differences between rows are paired.
``verdict`` turns the table into the answer to the seed's claim.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .contract import BUDGET, CLEAN, CONFIDENT, condition_name
from .detection import _counts, flag_score, paired_aurocs, percentile_interval
from .metrics import auroc, calibration_bins

DETECTION_SCORES = ("entropy", "max_prob", "top_prob")


def clean_statistics(mean_probs: np.ndarray, labels: np.ndarray, counts: np.ndarray, bins: int) -> dict[str, np.ndarray]:
    """Accuracy, ECE and NLL of mean probabilities (n, C) with true ``labels``: the values (index 0) and
    one per bootstrap resample (``counts`` (R, n): how often each image is drawn), as arrays (R + 1,)."""
    n = len(labels)
    rows = np.arange(n)
    top = mean_probs.max(axis=1)
    correct = (mean_probs.argmax(axis=1) == labels).astype(np.float64)
    nll = -np.log(np.clip(mean_probs[rows, labels].astype(np.float64), 1e-12, None))
    edges = [b["upper"] for b in calibration_bins(np.zeros(0), np.zeros(0), bins)][:-1]
    which = np.clip(np.digitize(top, edges, right=True), 0, bins - 1)
    onehot = np.zeros((n, bins))
    onehot[rows, which] = 1.0
    weights = np.vstack([np.ones((1, n)), counts])  # row 0: the sample itself
    return {"accuracy": weights @ correct / n, "nll": weights @ nll / n,
            "ece": np.abs(weights @ (onehot * correct[:, None]) - weights @ (onehot * top[:, None])).sum(axis=1) / n}


def _pooled(frame: pd.DataFrame, clean: pd.DataFrame, positives: list[tuple[str, pd.Index]], counts_seed: int,
            resamples: int) -> dict[str, float]:
    """Detection of the positives (condition, image ids) of ``frame`` against the clean-correct images of
    ``clean`` that any of them came from or that were attacked (``clean``: indexed by image id, already
    the negatives): AUROCs of each score, and AUROC(entropy) − AUROC(max_prob) with its paired interval."""
    neg = {score: flag_score(clean, score) for score in DETECTION_SCORES}
    by_condition = {c: f.set_index("image_id") for c, f in frame.groupby("condition", sort=False)}
    pos_frames, at = [], []
    for condition, ids in positives:
        found = by_condition.get(condition)
        if found is None:
            continue
        rows = found.reindex(ids).dropna(subset=["entropy"])
        where = clean.index.get_indexer(rows.index)
        pos_frames.append(rows[where >= 0])
        at.append(where[where >= 0])
    empty = {"n_clean": len(clean), "n_positives": 0, **{f"auroc_{s}": float("nan") for s in DETECTION_SCORES},
             "delta": float("nan"), "delta_low": float("nan"), "delta_high": float("nan")}
    if not pos_frames or not sum(len(f) for f in pos_frames) or not len(clean):
        return empty
    pos_frame, pos_at = pd.concat(pos_frames), np.concatenate(at)
    pos = {score: flag_score(pos_frame, score) for score in DETECTION_SCORES}
    counts = _counts(np.random.default_rng(counts_seed), len(clean), resamples)
    paired = paired_aurocs(neg, pos, pos_at, counts)
    low, high = percentile_interval(paired["entropy"] - paired["max_prob"])
    aurocs = {score: auroc(neg[score], pos[score]) for score in DETECTION_SCORES}
    return {"n_clean": len(clean), "n_positives": len(pos_frame), **{f"auroc_{s}": v for s, v in aurocs.items()},
            "delta": aurocs["entropy"] - aurocs["max_prob"], "delta_low": low, "delta_high": high}


def methods_table(uncertainty: pd.DataFrame, equal_passes: pd.DataFrame, attacks: pd.DataFrame,
                  models: list[dict[str, Any]], timed: dict[str, dict[str, float]], cards: dict[str, dict[str, Any]],
                  passes: int, members: int, first_dropout: float, bins: int, resamples: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """The ``methods`` table (compute/contract.py), rows in the models' order (``models``: the manifest's
    entries), MC dropout's row at T = M right after its row at T. ``timed``: per model key the measured
    seconds per clean image, ``inference`` (all passes) and ``inference_m`` (MC dropout's first M)."""
    if uncertainty.empty:
        return pd.DataFrame()
    clean_all = uncertainty[uncertainty["condition"] == CLEAN]
    ids = np.sort(clean_all["image_id"].unique())
    counts = _counts(np.random.default_rng([seed, 21]), len(ids), resamples)  # one draw for every row: paired
    plain = [a for a, card in cards.items() if not card.get("adaptive")]
    adaptive = [a for a, card in cards.items() if card.get("adaptive")]
    # The images every model was attacked on by every non-adaptive attack: the pooled confident sets compare there.
    common = None
    for (model, attack), rows in attacks[attacks["attack"].isin(plain)].groupby(["model", "attack"], sort=False):
        here = set(rows["image_id"])
        common = here if common is None else common & here
    common_ids = pd.Index(sorted(common or ()))
    rows_out: list[dict[str, Any]] = []
    reference_key = next((m["key"] for m in models if m["method"] == "mc_dropout"
                          and m["dropout_p"] is not None and abs(m["dropout_p"] - first_dropout) < 1e-12), None)
    stats_of: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    for m in models:
        key = m["key"]
        variants = [(uncertainty, passes if m["method"] == "mc_dropout" else len(m["members"]), "inference")]
        if m["method"] == "mc_dropout" and not equal_passes.empty and (equal_passes["model"] == key).any():
            variants.append((equal_passes, members, "inference_m"))
        for frame, n_passes, timing in variants:
            own = frame[frame["model"] == key]
            clean = own[own["condition"] == CLEAN].set_index("image_id").reindex(ids)
            probs = np.stack(clean["mean_probs"].to_numpy()).astype(np.float64)
            labels = clean["label"].to_numpy()
            stats = clean_statistics(probs, labels, counts, bins)
            stats_of[(key, n_passes)] = stats
            row: dict[str, Any] = {"model": key, "dropout_p": m["dropout_p"], "method": m["method"],
                                   "label": m["label"] if n_passes == passes or m["method"] != "mc_dropout"
                                   else f"{m['label']}, T = {n_passes}",
                                   "passes": n_passes, "train_seconds": m.get("train_seconds"),
                                   "train_images": m.get("train_images"),
                                   "seconds_per_image": timed.get(key, {}).get(timing, float("nan")),
                                   "n_images": len(ids), "brier": _brier(probs, labels)}
            for name, values in stats.items():
                row[name] = float(values[0])
                row[f"{name}_low"], row[f"{name}_high"] = percentile_interval(values[1:])
            correct = clean[clean["plain_pred"] == clean["label"]]
            att = attacks[attacks["model"] == key]
            confident = [(condition_name(a, CONFIDENT), pd.Index(att.loc[(att["attack"] == a) & (att["operating_point"]
                          == CONFIDENT) & att["success"] & att["image_id"].isin(common_ids), "image_id"]))
                         for a in plain]
            pooled = _pooled(own, correct.loc[correct.index.intersection(common_ids)].reset_index()
                             .set_index("image_id"), confident, seed * 7919 + 21, resamples)
            row.update({"n_clean": pooled["n_clean"], "n_confident": pooled["n_positives"],
                        "auroc_entropy_confident": pooled["auroc_entropy"],
                        "auroc_max_prob_confident": pooled["auroc_max_prob"],
                        "auroc_top_prob_confident": pooled["auroc_top_prob"], "delta_confident": pooled["delta"],
                        "delta_confident_low": pooled["delta_low"], "delta_confident_high": pooled["delta_high"]})
            row.update({"n_adaptive": 0, "delta_adaptive": float("nan"), "delta_adaptive_low": float("nan"),
                        "delta_adaptive_high": float("nan")})
            for a in adaptive[:1]:
                budgets = att.loc[(att["attack"] == a) & (att["operating_point"] == BUDGET), "eps"]
                if budgets.empty:
                    continue
                eps = float(budgets.max())
                won = att[(att["attack"] == a) & (att["operating_point"] == BUDGET) & (att["eps"] == eps)]
                negatives = correct.loc[correct.index.intersection(pd.Index(won.loc[won["clean_correct"], "image_id"]))]
                result = _pooled(own, negatives, [(condition_name(a, BUDGET, eps), pd.Index(won.loc[won["success"],
                                                                                                 "image_id"]))],
                                 seed * 7919 + 22, resamples)
                row.update({"n_adaptive": result["n_positives"], "delta_adaptive": result["delta"],
                            "delta_adaptive_low": result["delta_low"], "delta_adaptive_high": result["delta_high"]})
            rows_out.append(row)
    reference = stats_of.get((reference_key, passes)) if reference_key else None
    for row in rows_out:
        row["reference"] = reference_key if reference is not None else None
        for name in ("accuracy", "nll", "ece"):
            if reference is None:
                diff = np.full(len(counts) + 1, np.nan)
            else:
                diff = stats_of[(row["model"], row["passes"])][name] - reference[name]
            row[f"{name}_vs_reference"] = float(diff[0])
            low, high = percentile_interval(diff[1:])
            row[f"{name}_vs_reference_low"], row[f"{name}_vs_reference_high"] = low, high
    return pd.DataFrame(rows_out)


def _brier(probs: np.ndarray, labels: np.ndarray) -> float:
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def _excludes_zero(low: float, high: float) -> int:
    """+1 when an interval lies above 0, -1 below, 0 when it contains 0 or is undefined."""
    if np.isfinite(low) and low > 0:
        return 1
    if np.isfinite(high) and high < 0:
        return -1
    return 0


def verdict(methods: pd.DataFrame) -> dict[str, Any]:
    """The seed's claim, "MC dropout is more computationally efficient while still providing similar
    benefits", checked against each ensemble on the ``methods`` table: per ensemble, whether MC dropout
    (the reference row, T passes) trains cheaper, predicts faster, and matches it in accuracy, NLL, ECE
    and detection (paired intervals of ensemble − MC containing 0: similar; excluding 0: one is better).
    ``holds`` when MC dropout is cheaper to train and to run and no benefit of the ensemble is
    distinguishable; ``does not hold`` when it is neither cheaper to run nor as good; else ``partly``."""
    if methods.empty or methods["reference"].isna().all():
        return {"verdict": "not measured", "ensembles": []}
    ref_key = methods["reference"].dropna().iloc[0]
    ref = methods[(methods["model"] == ref_key) & (methods["passes"] == methods.loc[methods["model"] == ref_key,
                                                                                   "passes"].max())].iloc[0]
    out = []
    for _, row in methods[methods["method"] != "mc_dropout"].iterrows():
        better = []  # where the ensemble is distinguishably better than MC dropout
        worse = []
        for name, sign in (("accuracy", 1), ("nll", -1), ("ece", -1)):
            side = _excludes_zero(row[f"{name}_vs_reference_low"], row[f"{name}_vs_reference_high"]) * sign
            (better if side > 0 else worse if side < 0 else []).append(name)
        cheaper_training = ref["train_images"] < row["train_images"]
        faster = ref["seconds_per_image"] < row["seconds_per_image"]
        out.append({"model": row["model"], "label": row["label"], "better": better, "worse": worse,
                    "cheaper_training": bool(cheaper_training), "faster_inference": bool(faster),
                    "train_ratio": float(row["train_images"] / ref["train_images"]) if ref["train_images"] else None})
    if not out:
        return {"verdict": "not measured", "ensembles": []}
    similar = all(not e["better"] for e in out)
    efficient = all(e["cheaper_training"] and e["faster_inference"] for e in out)
    if similar and efficient:
        answer = "holds"
    elif not similar and not any(e["faster_inference"] for e in out):
        answer = "does not hold"
    else:
        answer = "partly"
    return {"verdict": answer, "reference": ref_key, "ensembles": out}
