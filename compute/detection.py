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
from .contract import BASELINE_SCORE, CLEAN, OOD, SCORES, condition_name

CURVE_POINTS = 101  # at most this many points per stored ROC or risk-coverage curve


def flag_score(frame: pd.DataFrame, score: str) -> np.ndarray:
    """The score of every row, oriented so that higher means "flag as adversarial / uncertain"."""
    values = frame[score].to_numpy(dtype=np.float64)
    return -values if score in ("max_prob", "top_prob") else values  # probabilities: flagged when low


def _counts(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How often each of n items is drawn in each of ``resamples`` resamples with replacement: (resamples, n)."""
    draws = rng.integers(0, n, (resamples, n)) + np.arange(resamples)[:, None] * n
    # int32: every count and every sum of them below stays exact (at most resamples x n), in half the memory
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.int32)


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


def paired_aurocs(neg: dict[str, np.ndarray], pos: dict[str, np.ndarray], pos_at: np.ndarray,
                  counts: np.ndarray) -> dict[str, np.ndarray]:
    """Each score's AUROC in every resample of a paired image-level bootstrap: ``counts`` (R, n) says
    how often each of the n negative images is drawn in each resample, and every positive (one image's
    attacked version, or its noise control...) is weighted by the draws of its own image (``pos_at``:
    its position among the negatives), so that an image's clean and attacked versions stay together.
    ``neg``, ``pos``: score -> flag scores. Returns score -> (R,) AUROCs (ties half; NaN when a resample
    draws no positive)."""
    total_neg = counts.sum(axis=1)
    weights = counts[:, pos_at]  # (R, n_pos)
    total_pos = weights.sum(axis=1)
    out = {}
    for score, negatives in neg.items():
        order = np.argsort(negatives, kind="stable")
        ranked = negatives[order]
        cum = np.concatenate([np.zeros((len(counts), 1)), np.cumsum(counts[:, order], axis=1)], axis=1)
        below = np.searchsorted(ranked, pos[score], side="left")
        upto = np.searchsorted(ranked, pos[score], side="right")
        wins = (cum[:, below] + cum[:, upto]) / 2  # drawn negatives below each positive, ties half
        with np.errstate(invalid="ignore", divide="ignore"):
            out[score] = (weights * wins).sum(axis=1) / (total_pos * total_neg)
    return out


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``values`` (their undefined ones left out)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def tie_limited(negatives: np.ndarray, positives: np.ndarray, tpr: float = 0.95) -> bool:
    """Whether the FPR at ``tpr`` TPR sits on a tie: negatives share the threshold score, so no
    threshold flags exactly ``tpr`` of the positives (a score with few distinct values, such as the
    variation ratio of T passes)."""
    if len(negatives) == 0 or len(positives) == 0:
        return False
    threshold = np.sort(positives)[::-1][math.ceil(tpr * len(positives) - 1e-9) - 1]
    return bool(np.any(negatives == threshold))


def detection(uncertainty: pd.DataFrame, attacks: pd.DataFrame, models: list[str], resamples: int = 1000,
              seed: int = 0, cards: dict[str, dict] | None = None) -> dict[str, pd.DataFrame]:
    """The detection, roc and adaptive tables, models in the order of ``models``.

    detection: one row per (model, attack, operating point, budget, reference, score). Negatives are the
    clean-correct images of the attack's own image set (an attack run on a subset: its subset); the
    positives of reference ``adversarial`` are its successful adversarials, of ``noise`` their noise
    controls, of ``unattacked`` the same images unattacked (which images an attack fools already says
    something about them). Beside each AUROC and its marginal interval: ``delta_vs_baseline``, the
    paired image-level bootstrap of AUROC(score) - AUROC(max_prob) on the same positives; and for the
    adversarial rows ``gap_vs_noise``, the mean per-image score(adversarial) - score(noise control).
    adaptive: per adaptive attack (``cards``) whose baseline ran, per model, budget and score, its AUROC
    against the baseline's on the same images, with the paired difference.
    """
    rows, curves, adaptive = [], [], []
    for model in models:
        unc = uncertainty[uncertainty["model"] == model]
        clean = unc[unc["condition"] == CLEAN].set_index("image_id")
        salt = _salt(unc)
        by_condition = {c: f.set_index("image_id") for c, f in unc.groupby("condition", sort=False)}
        everyone = clean.index[clean["plain_pred"] == clean["label"]]
        shared: dict[tuple, Resampled] = {}
        successes: dict[tuple, pd.Index] = {}
        for (attack, point, eps), group in attacks[attacks["model"] == model].groupby(
                ["attack", "operating_point", "eps"], sort=False, dropna=False):
            eps = None if eps != eps else float(eps)
            name = condition_name(attack, point, eps)
            ids_neg = pd.Index(group.loc[group["clean_correct"], "image_id"])
            ids_pos = pd.Index(group.loc[group["success"], "image_id"])
            successes[(attack, point, eps)] = ids_pos
            negatives = clean.loc[ids_neg]
            # The negatives of an attack on every image are the model's clean-correct images: resampled
            # once per score (seeded as before models had keys); an attack on a subset has its own.
            whole = len(ids_neg) == len(everyone)
            neg_name = CLEAN if whole else f"{CLEAN}:{attack}"
            neg = {score: flag_score(negatives, score) for score in SCORES}
            for score in SCORES:
                if (neg_name, score) not in shared:
                    shared[(neg_name, score)] = resample_negatives(neg[score], resamples,
                                                                   _seed(seed, salt, neg_name, score))
            counts = _counts(np.random.default_rng(_seed(seed, salt, f"paired:{name}", "images")), len(ids_neg),
                             resamples)
            pos_at = ids_neg.get_indexer(ids_pos)
            sets = {"adversarial": by_condition.get(name, clean.iloc[:0]).reindex(ids_pos),
                    "noise": by_condition.get(condition_name(attack, point, eps, noise=True),
                                              clean.iloc[:0]).reindex(ids_pos),
                    "unattacked": clean.reindex(ids_pos)}
            key = {"attack": attack, "operating_point": point, "eps": eps}
            for reference, positives in sets.items():
                have = positives["entropy"].notna().to_numpy()
                positives, at = positives[have], pos_at[have]
                pos = {score: flag_score(positives, score) for score in SCORES}
                paired = paired_aurocs(neg, pos, at, counts) if len(at) else {}
                gap = {}
                if reference == "adversarial":
                    gap = _noise_gaps(positives, sets["noise"], resamples, _seed(seed, salt, f"gap:{name}", "images"))
                for score in SCORES:
                    # One seed per row, from its key: a row does not depend on which others exist.
                    row_name = name if reference == "adversarial" else f"{reference}:{name}"
                    interval = auroc_interval(neg[score], pos[score], resamples, _seed(seed, salt, row_name, score),
                                              shared=shared[(neg_name, score)])
                    rows.append({"model": model, **key, "reference": reference,
                                 **_row(neg, pos, score, interval, paired, gap)})
                    if len(ids_neg) and len(at):
                        curves.append(roc_points(neg[score], pos[score]).assign(
                            model=model, score=score, reference=reference, **key))
        adaptive += _adaptive_rows(model, clean, by_condition, attacks[attacks["model"] == model], successes,
                                   cards or {}, resamples, seed, salt)
    roc_columns = ["model", "attack", "operating_point", "eps", "reference", "score", "fpr", "tpr"]
    roc = pd.concat(curves, ignore_index=True)[roc_columns] if curves else pd.DataFrame(columns=roc_columns)
    return {"detection": pd.DataFrame(rows), "roc": roc, "adaptive": pd.DataFrame(adaptive)}


def _row(neg: dict[str, np.ndarray], pos: dict[str, np.ndarray], score: str, interval: tuple[float, float],
         paired: dict[str, np.ndarray], gap: dict[str, tuple[float, float, float]]) -> dict:
    """The figures of one detection row: ``neg``/``pos`` score -> flag scores, ``interval`` the marginal
    AUROC interval, ``paired`` the paired resamples' AUROCs of every score, ``gap`` the noise gaps."""
    n, m = len(neg[score]), len(pos[score])
    delta, d_low, d_high = float("nan"), float("nan"), float("nan")
    if paired and score != BASELINE_SCORE:
        delta = auroc(neg[score], pos[score]) - auroc(neg[BASELINE_SCORE], pos[BASELINE_SCORE])
        d_low, d_high = percentile_interval(paired[score] - paired[BASELINE_SCORE])
    g, g_low, g_high = gap.get(score, (float("nan"),) * 3)
    return {"score": score, "n_clean": n, "n_adv": m, "auroc": auroc(neg[score], pos[score]),
            "auroc_low": interval[0], "auroc_high": interval[1], "aupr": average_precision(neg[score], pos[score]),
            "fpr_at_95tpr": fpr_at_tpr(neg[score], pos[score]), "fpr_tied": tie_limited(neg[score], pos[score]),
            "mean_clean": float(np.mean(neg[score])) if n else float("nan"),
            "mean_adv": float(np.mean(pos[score])) if m else float("nan"),
            "delta_vs_baseline": delta, "delta_low": d_low, "delta_high": d_high,
            "gap_vs_noise": g, "gap_low": g_low, "gap_high": g_high}


def transfer_detection(transfer: pd.DataFrame, uncertainty: pd.DataFrame, attacks: pd.DataFrame,
                       resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Detection rows (reference ``transfer``) of the adversarials made on an ensemble's first member and
    scored on the ensemble (table ``transfer``): per (ensemble, attack, operating point), negatives the
    ensemble's clean-correct images among those the attack ran on, positives the member's successful
    adversarials of those images that fool the ensemble too. Same columns as every detection row, the
    delta against the baseline paired over images; no noise gap."""
    rows = []
    if transfer.empty:
        return pd.DataFrame(rows)
    for (model, attack, point), made in transfer.groupby(["model", "attack", "operating_point"], sort=False):
        unc = uncertainty[uncertainty["model"] == model]
        clean = unc[unc["condition"] == CLEAN].set_index("image_id")
        attacked = attacks[(attacks["model"] == model) & (attacks["attack"] == attack) &
                           (attacks["operating_point"] == point) & attacks["clean_correct"]]
        ids_neg = pd.Index(attacked["image_id"])
        won = made[made["member_success"] & made["fooled"] & made["image_id"].isin(ids_neg)].set_index("image_id")
        negatives = clean.loc[ids_neg]
        neg = {score: flag_score(negatives, score) for score in SCORES}
        pos = {score: flag_score(won, score) for score in SCORES}
        salt, name = _salt(unc), f"transfer:{condition_name(attack, point)}"
        counts = _counts(np.random.default_rng(_seed(seed, salt, name, "images")), len(ids_neg), resamples)
        paired = paired_aurocs(neg, pos, ids_neg.get_indexer(won.index), counts) if len(won) else {}
        for score in SCORES:
            interval = auroc_interval(neg[score], pos[score], resamples, _seed(seed, salt, name, score))
            rows.append({"model": model, "attack": attack, "operating_point": point, "eps": None,
                         "reference": "transfer", **_row(neg, pos, score, interval, paired, {})})
    return pd.DataFrame(rows)


def ood_detection(uncertainty: pd.DataFrame, ood: pd.DataFrame, models: list[str], resamples: int = 1000,
                  seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detection rows (reference and attack ``ood``) and their ROC curves for the out-of-distribution
    images (table ``ood``): per model and score, negatives the model's clean-correct test images (as for
    every attack on all of them), positives every OOD image. Same columns as every detection row; the
    delta against the baseline is paired over the images: each resample draws the negatives and the
    OOD images once (two independent samples), and every score is judged on that same draw. No noise gap."""
    rows, curves = [], []
    if ood.empty:
        return pd.DataFrame(rows), pd.DataFrame(curves)
    for model in models:
        unc = uncertainty[uncertainty["model"] == model]
        clean = unc[unc["condition"] == CLEAN]
        negatives = clean[clean["plain_pred"] == clean["label"]]
        positives = ood[ood["model"] == model]
        if negatives.empty or positives.empty:
            continue
        neg = {score: flag_score(negatives, score) for score in SCORES}
        pos = {score: flag_score(positives, score) for score in SCORES}
        salt = _salt(unc)
        name = f"{OOD}:{positives['dataset'].iloc[0]}"
        neg_counts = _counts(np.random.default_rng(_seed(seed, salt, name, "negatives")), len(negatives), resamples)
        pos_counts = _counts(np.random.default_rng(_seed(seed, salt, name, "positives")), len(positives), resamples)
        paired = {score: _weighted_aurocs(neg[score], pos[score], neg_counts, pos_counts) for score in SCORES}
        for score in SCORES:
            interval = percentile_interval(paired[score])
            rows.append({"model": model, "attack": OOD, "operating_point": None, "eps": None, "reference": OOD,
                         **_row(neg, pos, score, interval, paired, {})})
            curves.append(roc_points(neg[score], pos[score]).assign(model=model, score=score, reference=OOD,
                                                                    attack=OOD, operating_point=None, eps=None))
    roc_columns = ["model", "attack", "operating_point", "eps", "reference", "score", "fpr", "tpr"]
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True)[roc_columns] if curves else pd.DataFrame(
        columns=roc_columns)


def _weighted_aurocs(negatives: np.ndarray, positives: np.ndarray, neg_counts: np.ndarray,
                     pos_counts: np.ndarray) -> np.ndarray:
    """The AUROC of every resample in which negative i is drawn ``neg_counts[r, i]`` times and positive j
    ``pos_counts[r, j]`` times (ties count half): (R,)."""
    order = np.argsort(negatives, kind="stable")
    ranked = negatives[order]
    cum = np.concatenate([np.zeros((len(neg_counts), 1)), np.cumsum(neg_counts[:, order], axis=1)], axis=1)
    below = np.searchsorted(ranked, positives, side="left")
    upto = np.searchsorted(ranked, positives, side="right")
    wins = (cum[:, below] + cum[:, upto]) / 2
    return (pos_counts * wins).sum(axis=1) / (neg_counts.sum(axis=1) * pos_counts.sum(axis=1))


def _noise_gaps(adversarial: pd.DataFrame, noise: pd.DataFrame, resamples: int,
                seed: int) -> dict[str, tuple[float, float, float]]:
    """score -> (mean per-image score(adversarial) - score(noise control), 95% bootstrap interval) over
    the images with both."""
    both = adversarial.index.intersection(noise.dropna(subset=["entropy"]).index)
    if len(both) == 0:
        return {}
    counts = _counts(np.random.default_rng(seed), len(both), resamples)
    out = {}
    for score in SCORES:
        diff = flag_score(adversarial.loc[both], score) - flag_score(noise.loc[both], score)
        out[score] = (float(diff.mean()), *percentile_interval((counts * diff).sum(axis=1) / len(both)))
    return out


def _adaptive_rows(model: str, clean: pd.DataFrame, by_condition: dict[str, pd.DataFrame], attacks: pd.DataFrame,
                   successes: dict[tuple, pd.Index], cards: dict[str, dict], resamples: int, seed: int,
                   salt: str) -> list[dict]:
    """Per adaptive attack whose baseline ran: at every budget both have, each score's AUROC of the
    adaptive attack's successes against the baseline's, on the clean-correct images both attacked,
    with the paired image-level bootstrap of the difference (adaptive - baseline)."""
    rows = []
    for attack, card in cards.items():
        base = card.get("baseline")
        if not card.get("adaptive") or not base or base not in cards:
            continue
        mine = attacks[(attacks["attack"] == attack) & attacks["clean_correct"]]
        theirs = attacks[(attacks["attack"] == base) & attacks["clean_correct"]]
        ids = pd.Index(sorted(set(mine["image_id"]) & set(theirs["image_id"])))
        if len(ids) == 0:
            continue
        negatives = clean.loc[ids]
        neg = {score: flag_score(negatives, score) for score in SCORES}
        budgets = sorted(set(mine["eps"].dropna()) & set(theirs["eps"].dropna()))
        for eps in budgets:
            counts = _counts(np.random.default_rng(_seed(seed, salt, f"adaptive:{attack}:{eps:g}", "images")), len(ids),
                             resamples)
            sides = {}
            for who in (attack, base):
                hit = successes[(who, "budget", float(eps))].intersection(ids)
                adv = by_condition[condition_name(who, "budget", float(eps))].loc[hit]
                pos = {score: flag_score(adv, score) for score in SCORES}
                sides[who] = (pos, paired_aurocs(neg, pos, ids.get_indexer(hit), counts), len(hit))
            for score in SCORES:
                (pa, ra, na), (pb, rb, nb) = sides[attack], sides[base]
                a, b = auroc(neg[score], pa[score]), auroc(neg[score], pb[score])
                low, high = percentile_interval(ra[score] - rb[score])
                rows.append({"model": model, "attack": attack, "baseline": base, "eps": float(eps), "score": score,
                             "n_clean": len(ids), "n_adv": na, "n_baseline": nb, "auroc": a, "auroc_baseline": b,
                             "delta": a - b, "delta_low": low, "delta_high": high})
    return rows


def _salt(uncertainty: pd.DataFrame) -> str:
    """What a model's bootstrap seeds are salted with: its dropout rate where it has one, else its key.
    The dropout rate keeps the seeds, and so the intervals, of results computed before models had keys."""
    p = uncertainty["dropout_p"].iloc[0] if len(uncertainty) else float("nan")
    return str(float(p)) if p is not None and p == p else str(uncertainty["model"].iloc[0])


def _seed(seed: int, salt: str, condition: str, score: str) -> int:
    digest = hashlib.sha256(f"robustviz-bootstrap:{seed}:{salt}:{condition}:{score}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def oracle_aurc(correct: np.ndarray) -> float:
    """The AURC of a score that keeps every correct image before any wrong one: the best possible."""
    n, right = len(correct), int(np.sum(correct))
    k = np.arange(1, n + 1)
    return float(np.mean(np.maximum(k - right, 0) / k)) if n else float("nan")


def replaced(image_ids: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Which images a deployed model meets attacked: each image independently with probability ``share``,
    from a hash of (seed, image id), so that every model and attack replaces the same images."""
    draws = np.array([int.from_bytes(hashlib.sha256(f"robustviz-replace:{seed}:{int(i)}".encode()).digest()[:8],
                                     "little") / 2.0 ** 64 for i in image_ids])
    return draws < share


def aurc_resamples(certainty: np.ndarray, correct: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AURC, oracle AURC) of every bootstrap resample: ``counts`` (R, n) says how often each image is
    drawn. A resample keeps the full sample's order (most certain first), each drawn image repeated;
    the risk summed over an image's run of positions a+1..a+c is closed-form in harmonic numbers, so
    no resample is sorted or expanded."""
    order = np.argsort(-np.asarray(certainty, dtype=np.float64), kind="stable")
    wrong = (~np.asarray(correct, dtype=bool)[order]).astype(np.float64)
    c = counts[:, order].astype(np.float64)
    n = counts.shape[1]
    harmonic = np.r_[0.0, np.cumsum(1.0 / np.arange(1, n + 1))]
    upto = np.cumsum(c, axis=1)
    before = upto - c
    errors_before = np.cumsum(c * wrong, axis=1) - c * wrong
    run = harmonic[upto.astype(np.int64)] - harmonic[before.astype(np.int64)]  # sum of 1/p over the run
    aurc = (errors_before * run + wrong * (c - before * run)).sum(axis=1) / n
    right = (c * (1 - wrong)).sum(axis=1)
    oracle = ((n - right) - right * (harmonic[n] - harmonic[right.astype(np.int64)])) / n
    return aurc, oracle


def selective(uncertainty: pd.DataFrame, share: float = 0.5, seed: int = 0, resamples: int = 1000) -> pd.DataFrame:
    """The risk_coverage table, per model and score: on the clean test images, and under each attack
    (noise controls aside) on the population a deployed model would meet: the attack's test images
    (its subset, for an attack on one) with a ``share`` of them (``replaced``) met as their adversarial,
    the rest clean. Each score judges one stated prediction (``prediction``): the MC scores the MC mean
    (``pred``), max_prob the model with dropout off (``plain_pred``). Beside AURC: the oracle's, E-AURC
    (AURC minus the oracle's, with its 95% percentile interval over ``resamples`` seeded image-level
    resamples, shared by the scores of one population) and the random order's (the error rate)."""
    frames = []
    for model, unc in uncertainty[~uncertainty["noise"]].groupby("model", sort=False):
        clean = unc[unc["condition"] == CLEAN].set_index("image_id")
        salt = _salt(unc)
        for condition, rows in unc.groupby("condition", sort=False):
            first = rows.iloc[0]
            rows = rows.set_index("image_id")
            if condition == CLEAN:
                population, attacked = rows, np.zeros(len(rows), dtype=bool)
            else:
                attacked = replaced(rows.index.to_numpy(), share, seed)
                population = pd.concat([rows[attacked], clean.loc[rows.index[~attacked]]]).loc[rows.index]
            counts = _counts(np.random.default_rng(_seed(seed, salt, f"risk:{condition}", "images")),
                             len(population), resamples)
            for score in SCORES:
                judged = "plain_pred" if score == BASELINE_SCORE else "pred"
                correct = (population[judged] == population["label"]).to_numpy()
                curve, aurc = risk_coverage(-flag_score(population, score), correct)
                best = oracle_aurc(correct)
                # E-AURC >= 0 by definition; the clip only removes rounding below it.
                low, high = percentile_interval(np.maximum(np.subtract(*aurc_resamples(-flag_score(population, score), correct,
                                                                             counts)), 0.0))
                frames.append(curve.assign(model=model, condition=condition, attack=first["attack"],
                                           operating_point=first["operating_point"], eps=first["eps"], score=score,
                                           prediction="dropout_off" if judged == "plain_pred" else "mc_mean",
                                           n_images=len(population), n_attacked=int(attacked.sum()), aurc=aurc,
                                           oracle_aurc=best, e_aurc=aurc - best, e_aurc_low=low, e_aurc_high=high,
                                           random_aurc=float(1 - correct.mean()) if len(correct) else float("nan")))
    return pd.concat(frames, ignore_index=True)
