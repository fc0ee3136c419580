"""Does uncertainty flag the attack? Detection and selective prediction, as the literature measures them
(numpy and pandas only).

Detection (Feinman et al. 2017; Smith & Gal 2018): negatives are the clean images the model (dropout
off) classifies correctly, positives the successful adversarials of one attack at one operating point
(or their noise controls). Scores, each "higher = flagged": ``entropy``, ``mutual_info``,
``variation_ratio`` of MC dropout, and the baseline ``max_prob`` of Hendrycks & Gimpel (2017), the
max softmax probability of the dropout-off model, flagged when low (its score is -max_prob).
Reported: AUROC with a seeded percentile-bootstrap 95% interval (negatives and positives resampled
separately), AUPR (average precision, positives = adversarial), FPR at 95% TPR, the mean score of
either side, and the ROC curve.

Selective prediction (Geifman & El-Yaniv 2017): sort the images from most to least certain by a
score; at coverage k/n the risk is the error rate of the k most certain; AURC is the mean risk over
k = 1..n. MC-dropout scores judge the MC prediction (``pred``), max_prob the dropout-off one.
"""
from __future__ import annotations

import hashlib
import math

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import auroc
from .contract import CLEAN, SCORES, condition_name

CURVE_POINTS = 101  # at most this many points per stored ROC or risk-coverage curve


def flag_score(frame: pd.DataFrame, score: str) -> np.ndarray:
    """The score of every row, oriented so that higher means "flag as adversarial / uncertain"."""
    values = frame[score].to_numpy(dtype=np.float64)
    return -values if score == "max_prob" else values


def _counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How often each of n items is drawn in each of ``resamples`` resamples with replacement: (resamples, n)."""
    draws = rng.integers(0, n, (resamples, n)) + np.arange(resamples)[:, None] * n
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n)


@dataclass(frozen=True)
class Resampled:
    """The negatives' side of the bootstrap, drawn once and shared by every row with these negatives."""

    sorted: np.ndarray  # the negatives' scores, ascending
    cum: np.ndarray  # (resamples, n + 1): resampled negatives at or below each sorted position


def resample_negatives(negatives: np.ndarray, resamples: int, seed: int) -> Resampled:
    neg = np.sort(np.asarray(negatives, dtype=np.float64))
    counts = _counts(np.random.default_rng(seed), len(neg), resamples)
    return Resampled(neg, np.concatenate([np.zeros((resamples, 1)), np.cumsum(counts, axis=1)], axis=1))


def auroc_interval(negatives: np.ndarray, positives: np.ndarray, resamples: int = 1000, seed: int = 0,
                   level: float = 0.95, shared: Resampled | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUROC: negatives and positives are resampled with
    replacement, separately, ``resamples`` times (generators seeded from ``seed``; ``shared``: the
    negatives already resampled). NaN if either side is empty."""
    n_neg, n_pos = len(negatives), len(positives)
    if n_neg == 0 or n_pos == 0:
        return float("nan"), float("nan")
    if shared is None:
        shared = resample_negatives(negatives, resamples, seed)
    pos = np.asarray(positives, dtype=np.float64)
    below = np.searchsorted(shared.sorted, pos, side="left")  # negatives strictly below each positive
    upto = np.searchsorted(shared.sorted, pos, side="right")  # ... and those tied with it
    wins = (shared.cum[:, below] + shared.cum[:, upto]) / 2  # resampled negatives below, ties counting half
    pos_counts = _counts(np.random.default_rng([seed, 1]), n_pos, resamples)
    aucs = (pos_counts * wins).sum(axis=1) / (n_neg * n_pos)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, [tail, 100 - tail])
    return float(low), float(high)


def _curve(negatives: np.ndarray, positives: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positives, true positives, thresholds) at each distinct score, highest threshold first."""
    scores = np.concatenate([negatives, positives])
    is_pos = np.concatenate([np.zeros(len(negatives)), np.ones(len(positives))])
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # last index of each distinct score
    tp = np.cumsum(is_pos)[last]
    return last + 1 - tp, tp, scores[last]


def average_precision(negatives: np.ndarray, positives: np.ndarray) -> float:
    """AUPR as average precision: sum over thresholds of (recall gained) x precision."""
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    fp, tp, _ = _curve(negatives, positives)
    recall = tp / len(positives)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * tp / (tp + fp)))


def fpr_at_tpr(negatives: np.ndarray, positives: np.ndarray, tpr: float = 0.95) -> float:
    """Share of negatives flagged by the highest threshold that flags at least ``tpr`` of the positives
    (a score >= threshold is flagged)."""
    if len(negatives) == 0 or len(positives) == 0:
        return float("nan")
    k = math.ceil(tpr * len(positives) - 1e-9)
    threshold = np.sort(positives)[::-1][k - 1]
    return float(np.mean(negatives >= threshold))


def roc_points(negatives: np.ndarray, positives: np.ndarray, points: int = CURVE_POINTS) -> pd.DataFrame:
    """The ROC curve from (0, 0) to (1, 1), thinned to at most ``points`` of its corners."""
    fp, tp, _ = _curve(negatives, positives)
    fpr = np.r_[0.0, fp / len(negatives)]
    tpr = np.r_[0.0, tp / len(positives)]
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})


def risk_coverage(certainty: np.ndarray, correct: np.ndarray,
                  points: int = CURVE_POINTS) -> tuple[pd.DataFrame, float]:
    """(coverage and risk thinned to at most ``points``, AURC) when the most certain images are kept first."""
    order = np.argsort(-certainty, kind="stable")
    errors = np.cumsum(~correct[order])
    k = np.arange(1, len(order) + 1)
    risk = errors / k
    keep = np.unique(np.linspace(0, len(k) - 1, min(points, len(k))).round().astype(int))
    return pd.DataFrame({"coverage": k[keep] / len(k), "risk": risk[keep]}), float(risk.mean())


def _key(attack: str, point: str, eps: float | None, noise_of: str | None) -> dict:
    return {"attack": attack, "operating_point": point, "eps": eps, "noise_of": noise_of}


def detection(uncertainty: pd.DataFrame, attacks: pd.DataFrame, models: list[str], resamples: int = 1000,
              seed: int = 0) -> dict[str, pd.DataFrame]:
    """The detection and roc tables: one row (one curve) per (model, attack or noise control,
    operating point, budget, score), models in the order of ``models``."""
    rows, curves = [], []
    for model in models:
        unc = uncertainty[uncertainty["model"] == model]
        clean = unc[(unc["condition"] == CLEAN) & (unc["plain_pred"] == unc["label"])]
        # Every row of a model and score has the same negatives: resample them once.
        salt = _salt(unc)
        shared = {score: resample_negatives(flag_score(clean, score), resamples, _seed(seed, salt, CLEAN, score))
                  for score in SCORES}
        by_condition = dict(tuple(unc.groupby("condition", sort=False)))
        for (attack, point, eps), group in attacks[attacks["model"] == model].groupby(
                ["attack", "operating_point", "eps"], sort=False, dropna=False):
            eps = None if eps != eps else float(eps)
            ids = group.loc[group["success"], "image_id"]
            for noise in (False, True):
                name = condition_name(attack, point, eps, noise)
                found = by_condition.get(name, unc.iloc[:0])
                positives = found.set_index("image_id").reindex(ids).dropna(subset=["entropy"])
                key = _key("noise", point, eps, attack) if noise else _key(attack, point, eps, None)
                for score in SCORES:
                    neg, pos = flag_score(clean, score), flag_score(positives, score)
                    # One seed per row, from its key: a row does not depend on which others exist.
                    low, high = auroc_interval(neg, pos, resamples, _seed(seed, salt, name, score), shared=shared[score])
                    rows.append({"model": model, **key, "score": score, "n_clean": len(neg), "n_adv": len(pos),
                                 "auroc": auroc(neg, pos), "auroc_low": low, "auroc_high": high,
                                 "aupr": average_precision(neg, pos), "fpr_at_95tpr": fpr_at_tpr(neg, pos),
                                 "mean_clean": float(np.mean(neg)) if len(neg) else float("nan"),
                                 "mean_adv": float(np.mean(pos)) if len(pos) else float("nan")})
                    if len(neg) and len(pos):
                        curves.append(roc_points(neg, pos).assign(model=model, score=score, **key))
    roc_columns = ["model", "attack", "operating_point", "eps", "noise_of", "score", "fpr", "tpr"]
    roc = pd.concat(curves, ignore_index=True)[roc_columns] if curves else pd.DataFrame(columns=roc_columns)
    return {"detection": pd.DataFrame(rows), "roc": roc}


def _salt(uncertainty: pd.DataFrame) -> str:
    """What a model's bootstrap seeds are salted with: its dropout rate where it has one, else its key.
    The dropout rate keeps the seeds, and so the intervals, of results computed before models had keys."""
    p = uncertainty["dropout_p"].iloc[0] if len(uncertainty) else float("nan")
    return str(float(p)) if p == p else str(uncertainty["model"].iloc[0])


def _seed(seed: int, salt: str, condition: str, score: str) -> int:
    digest = hashlib.sha256(f"robustviz-bootstrap:{seed}:{salt}:{condition}:{score}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def selective(uncertainty: pd.DataFrame) -> pd.DataFrame:
    """The risk_coverage table: clean and every attacked condition (noise controls aside), per score."""
    frames = []
    for (model, condition), rows in uncertainty[~uncertainty["noise"]].groupby(["model", "condition"], sort=False):
        first = rows.iloc[0]
        for score in SCORES:
            pred = rows["plain_pred"] if score == "max_prob" else rows["pred"]
            correct = (pred == rows["label"]).to_numpy()
            curve, aurc = risk_coverage(-flag_score(rows, score), correct)
            frames.append(curve.assign(model=model, condition=condition, attack=first["attack"],
                                       operating_point=first["operating_point"], eps=first["eps"], score=score,
                                       n_images=len(rows), aurc=aurc))
    return pd.concat(frames, ignore_index=True)
