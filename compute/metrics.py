"""Measures of MC-dropout outputs (numpy and pandas only, so results can be assembled without torch).

Per image (probs of shape (T, C) for its T passes):
  mean_probs p̄, var_probs Var_t[p_t] (ddof 0), confidence = 1 - var_probs[label],
  true_prob = p̄[label], pred = argmax p̄, entropy H[p̄] (nats),
  mutual_info = H[p̄] - mean_t H[p_t] (BALD, clamped >= 0), variation_ratio = 1 - mode count / T,
  fooled_share = share of the T passes whose prediction is not the label.
Per run: accuracy, ECE (equal-width bins on the top probability), NLL, Brier, also per class.
Between two sets of images: the AUROC of a score.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def image_measures(probs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image measures from per-pass softmax outputs ``probs`` (B, T, C) of any uncertainty method
    (compute/methods) and true ``labels`` (B,): the one place they are computed.

    Returns arrays of length B (``mean_probs``, ``var_probs``: (B, C); ``pass_true_prob``: (B, T)).
    """
    # Image-major in memory, viewed pass-major: every sum below then runs in one fixed order, whatever
    # layout came in (the order the tables have always been computed in).
    probs = np.moveaxis(np.ascontiguousarray(probs), 1, 0).astype(np.float64)
    t, b, c = probs.shape
    rows = np.arange(b)
    mean = probs.mean(axis=0)
    var = probs.var(axis=0)  # population variance, ddof = 0
    entropy = _entropy(mean)
    expected = _entropy(probs).mean(axis=0)
    votes = np.zeros((b, c), dtype=np.int64)
    np.add.at(votes, (np.repeat(rows[None], t, 0), probs.argmax(axis=2)), 1)
    return {
        "mean_probs": mean.astype(np.float32),
        "var_probs": var.astype(np.float32),
        "confidence": 1.0 - var[rows, labels],
        "true_prob": mean[rows, labels],
        "pred": mean.argmax(axis=1),
        "top_prob": mean.max(axis=1),
        "entropy": entropy,
        "mutual_info": np.clip(entropy - expected, 0.0, None),
        "variation_ratio": 1.0 - votes.max(axis=1) / t,
        "fooled_share": 1.0 - votes[rows, labels] / t,
        "pass_true_prob": probs[:, rows, labels].T.astype(np.float32),
    }


def calibration_bins(top_prob: np.ndarray, correct: np.ndarray, bins: int) -> list[dict[str, float]]:
    """Equal-width bins over [0, 1] of the top probability: count, mean confidence, accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(top_prob, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for k in range(bins):
        sel = which == k
        n = int(sel.sum())
        out.append({"bin": k, "lower": float(edges[k]), "upper": float(edges[k + 1]), "n_images": n,
                    "mean_top_prob": float(top_prob[sel].mean()) if n else float("nan"),
                    "accuracy": float(correct[sel].mean()) if n else float("nan")})
    return out


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion ``successes`` / ``n`` (NaN when n is 0): unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0% or 100%."""
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def run_metrics(mean_probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> dict[str, float]:
    """Accuracy (with its Wilson 95% interval), ECE (``bins`` equal-width bins, top label), NLL and
    Brier of mean probabilities (N, C)."""
    n = len(labels)
    if n == 0:
        return {"n_images": 0, "accuracy": float("nan"), "accuracy_low": float("nan"), "accuracy_high": float("nan"),
                "ece": float("nan"), "nll": float("nan"), "brier": float("nan")}
    p = mean_probs.astype(np.float64)
    rows = np.arange(n)
    top = p.max(axis=1)
    correct = (p.argmax(axis=1) == labels).astype(np.float64)
    ece = sum(b["n_images"] / n * abs(b["accuracy"] - b["mean_top_prob"])
              for b in calibration_bins(top, correct, bins) if b["n_images"])
    onehot = np.zeros_like(p)
    onehot[rows, labels] = 1.0
    low, high = wilson(int(correct.sum()), n)
    return {"n_images": n, "accuracy": float(correct.mean()), "accuracy_low": low, "accuracy_high": high,
            "ece": float(ece),
            "nll": float(-np.log(np.clip(p[rows, labels], 1e-12, None)).mean()),
            "brier": float(((p - onehot) ** 2).sum(axis=1).mean())}


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of a score separating ``positives`` from ``negatives`` (ties count
    half): the chance that a random positive scores higher than a random negative. NaN if either is empty."""
    n_neg, n_pos = len(negatives), len(positives)
    if n_neg == 0 or n_pos == 0:
        return float("nan")
    ranks = pd.Series(np.concatenate([negatives, positives])).rank(method="average").to_numpy()
    return float((ranks[n_neg:].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
