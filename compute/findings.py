"""The seed's claims, checked on the run's own tables: one row per (claim, measure, model, attack,
operating point), with its value, 95% interval, N and verdict (pandas and numpy only).

Claim (a), ``confidence_accuracy``: the seed says that MC-dropout confidence (1 − the variance of the
true class's probability over the passes) and accuracy (the mean of that probability, p̄) are linearly
dependent. The variance of a probability is bounded by p̄(1 − p̄), so confidence ≥ 1 − p̄(1 − p̄): a
relation shaped like that bound is not a line, and its sign flips at p̄ = 0.5. Measured per model, on the
clean test images and under each attack at its minimal and confident points (the clean-correct images
it attacked, as attacked):

- ``pearson``, ``spearman``: the correlation, with a percentile bootstrap interval over images;
- ``r2_linear``, ``r2_bound``: the share of confidence's variance a line in p̄ explains, and a line in
  p̄(1 − p̄) (the bound's shape);
- ``r2_gap``: r2_bound − r2_linear, paired over the same resampled images, and the verdict on
  linearity: "does not hold" when the bound's shape explains more (interval above 0);
- ``line_intercept``, ``line_slope``, ``bound_intercept``, ``bound_slope``: the two least-squares fits
  (confidence = intercept + slope · p̄, or · p̄(1 − p̄)), no interval, for the page to draw;
- ``pearson_below``, ``pearson_above``: the correlation among images with p̄ < 0.5 and p̄ ≥ 0.5; the
  verdict on one sign throughout: "does not hold" when the two intervals exclude 0 with opposite signs.

Every verdict comes from ``verdict`` (for one interval) or ``sign_verdict`` (for two), the one place
the rule is written.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import CLEAN, CONFIDENT, MINIMAL, OOD
from .detection import percentile_interval

HOLDS, FAILS, UNCLEAR = "holds", "does not hold", "not distinguishable"
PARTLY = "partly"  # claim (e)'s overall answer only: one half of a two-part claim holds
COLUMNS = ["claim", "measure", "model", "attack", "baseline", "operating_point", "eps", "value", "low", "high", "n",
           "verdict"]
SUBJECT, SEED_BASELINES = "iaa", ("fgsm", "lbfgs")  # claim (b) compares IAA with these two, as the seed did
# Claim (b), perceptibility: the sign of IAA − baseline that says "IAA is less perceptible".
PERCEPTIBILITY = {"l0": -1, "l2": -1, "linf": -1, "perceptual_distance": -1, "ssim": +1}
MIN_IMAGES = 10  # fewer images than this in a group: no row (an interval over a handful says nothing)


def verdict(low: float, high: float, supports: int = 1) -> str:
    """The verdict of an interval on a claim that predicts an effect of sign ``supports`` (+1 or −1):
    the whole interval on that side of 0 "holds", on the other side "does not hold", and an interval
    that contains 0, or is undefined, is "not distinguishable"."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNCLEAR
    if low > 0:
        return HOLDS if supports > 0 else FAILS
    if high < 0:
        return FAILS if supports > 0 else HOLDS
    return UNCLEAR


def sign_verdict(below: tuple[float, float], above: tuple[float, float]) -> str:
    """One sign throughout? From the intervals of the correlation below and above p̄ = 0.5: both
    excluding 0 on opposite sides "does not hold", on the same side "holds", else "not distinguishable"."""
    sides = [verdict(low, high) for low, high in (below, above)]
    if UNCLEAR in sides:
        return UNCLEAR
    return HOLDS if sides[0] == sides[1] else FAILS


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (nan where either side is constant)."""
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    den = np.sqrt((xc * xc).sum(-1) * (yc * yc).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as Spearman's rho needs."""
    return pd.DataFrame(np.atleast_2d(v)).rank(axis=1).to_numpy().reshape(np.shape(v))


def _r2(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """R² of the least-squares line y = a + b·x along the last axis: r² for one predictor."""
    return _pearson(x, y) ** 2


def _interval(samples: np.ndarray) -> tuple[float, float]:
    """The percentile interval of the resamples, none where most of them are undefined (a constant side)."""
    if np.isfinite(samples).sum() < 0.9 * len(samples):
        return float("nan"), float("nan")
    return percentile_interval(samples)


def confidence_accuracy(p_bar: np.ndarray, confidence: np.ndarray, resamples: int = 1000,
                        seed: int = 0) -> list[dict]:
    """Claim (a)'s measures for one set of images: ``p_bar`` the mean true-class probability,
    ``confidence`` 1 − its variance, one entry per image. Rows without the keys (model, attack,
    operating point); the bootstrap resamples images with replacement, seeded."""
    p_bar, confidence = np.asarray(p_bar, np.float64), np.asarray(confidence, np.float64)
    n = len(p_bar)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    x, y, bound = p_bar[idx], confidence[idx], (p_bar * (1 - p_bar))[idx]
    rows = []

    def row(measure: str, value: float, samples: np.ndarray | None, rule, count: int = n) -> None:
        low, high = _interval(samples) if samples is not None else (float("nan"), float("nan"))
        rows.append({"measure": measure, "value": float(value), "low": low, "high": high, "n": int(count),
                     "verdict": rule(low, high) if rule else ""})

    row("pearson", _pearson(p_bar, confidence), _pearson(x, y), verdict)
    row("spearman", _pearson(_ranks(p_bar), _ranks(confidence)), _pearson(_ranks(x), _ranks(y)), verdict)
    linear, shaped = _r2(p_bar, confidence), _r2(p_bar * (1 - p_bar), confidence)
    row("r2_linear", linear, _r2(x, y), None)
    row("r2_bound", shaped, _r2(bound, y), None)
    row("r2_gap", shaped - linear, _r2(bound, y) - _r2(x, y), lambda lo, hi: verdict(lo, hi, supports=-1))
    # The two fits themselves (the findings page draws them): confidence = intercept + slope · feature.
    for fit, feature in (("line", p_bar), ("bound", p_bar * (1 - p_bar))):
        slope, intercept = np.polyfit(feature, confidence, 1)
        row(f"{fit}_intercept", intercept, None, None)
        row(f"{fit}_slope", slope, None, None)
    halves = {}
    for measure, part in (("pearson_below", p_bar < 0.5), ("pearson_above", p_bar >= 0.5)):
        k = int(part.sum())
        if k < MIN_IMAGES:
            halves[measure] = (float("nan"), float("nan"))
            rows.append({"measure": measure, "value": float("nan"), "low": float("nan"), "high": float("nan"),
                         "n": k, "verdict": UNCLEAR})
            continue
        sub = np.flatnonzero(part)
        sub_idx = sub[rng.integers(0, k, size=(resamples, k))]
        samples = _pearson(p_bar[sub_idx], confidence[sub_idx])
        halves[measure] = _interval(samples)
        row(measure, _pearson(p_bar[sub], confidence[sub]), samples, verdict, k)
    sign = sign_verdict(halves["pearson_below"], halves["pearson_above"])
    for r in rows:
        if r["measure"] in ("pearson_below", "pearson_above"):
            r["verdict"] = sign
    return rows


def mean_interval(values: pd.Series, resamples: int, seed: int) -> dict:
    """The mean of ``values`` (one per image) with its percentile bootstrap interval over the images."""
    v = values.to_numpy(np.float64)
    rng = np.random.default_rng(seed)
    samples = v[rng.integers(0, len(v), size=(resamples, len(v)))].mean(1)
    low, high = _interval(samples)
    return {"value": float(v.mean()), "low": low, "high": high, "n": len(v)}


def compared(frame: pd.DataFrame, keys: list[str], measures: dict[str, int], claim: str, resamples: int,
             seed: int) -> list[dict]:
    """Per group of ``keys`` (with ``attack`` and ``image_id`` columns): each attack's mean of every measure
    over its images, and, paired, IAA − each seed baseline over the images both have, with the verdict of
    the interval on the sign ``measures[measure]`` the claim predicts (resampling seeded per group, so
    the measures of one pair over the same images share their resamples)."""
    rows = []
    for k, (group, g) in enumerate(frame.groupby(keys, sort=True, dropna=False)):
        common = dict(zip(keys, group if isinstance(group, tuple) else (group,)))
        for attack, own in g.groupby("attack", sort=True):
            for measure in measures:
                part = own[measure].dropna()
                if len(part) >= MIN_IMAGES:
                    rows.append({"claim": claim, "measure": measure, **common, "attack": attack,
                                 **mean_interval(part, resamples, seed + k), "verdict": ""})
        subject = g[g["attack"] == SUBJECT].set_index("image_id")
        for baseline in SEED_BASELINES:
            other = g[g["attack"] == baseline].set_index("image_id")
            for measure, supports in measures.items():
                both = subject[measure].dropna().index.intersection(other[measure].dropna().index)
                if len(both) < MIN_IMAGES:
                    continue
                stats = mean_interval(subject.loc[both, measure] - other.loc[both, measure], resamples, seed + k)
                rows.append({"claim": claim, "measure": measure, **common, "attack": SUBJECT, "baseline": baseline,
                             **stats, "verdict": verdict(stats["low"], stats["high"], supports)})
    return rows


def perceptibility(attacks: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> list[dict]:
    """Claim (b), "IAA is imperceptible": per model and operating point (minimal, confident), each attack's
    mean L0, L2, L∞, D and SSIM over its successful adversarials, and IAA − FGSM, IAA − L-BFGS paired
    over the images both fooled; "holds" when IAA is the less perceptible (smaller norms and D, larger
    SSIM)."""
    won = attacks[attacks["success"] & attacks["operating_point"].isin([MINIMAL, CONFIDENT])]
    return compared(won, ["model", "operating_point"], PERCEPTIBILITY, "iaa_imperceptible", resamples, seed)


def robustness(survival: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> list[dict]:
    """Claim (b), "IAA is more robust": per model, operating point and transformation (``transfer-<model>``
    for another model), the share of each attack's successful adversarials that still fool, and IAA −
    FGSM, IAA − L-BFGS paired over the images both fooled; "holds" when IAA's survive more often."""
    frame = survival.assign(measure=np.where(survival["transform"] == "transfer", "transfer-" + survival["target"],
                                             survival["transform"]), fooled=survival["fooled"].astype(float))
    rows = []
    for k, (measure, g) in enumerate(frame.groupby("measure", sort=True)):
        wide = g.rename(columns={"fooled": measure})
        rows += compared(wide, ["model", "operating_point"], {measure: +1}, "iaa_robust", resamples, seed + 101 * k)
    return rows


def detection_answer(detection: pd.DataFrame) -> list[dict]:
    """Claim (c), "MC dropout's uncertainty flags adversarials": per model, attack at its minimal and
    confident points and MC score, AUROC(score) − AUROC(softmax) on the same successful adversarials,
    with its paired image-level interval (from the detection table); "holds" when the score beats the
    softmax. Every score is reported: none is picked as the best."""
    d = detection[(detection["reference"] == "adversarial") & detection["operating_point"].isin([MINIMAL, CONFIDENT])
                  & detection["delta_vs_baseline"].notna()]
    return [{"claim": "mc_detects", "measure": r.score, "model": r.model, "attack": r.attack, "baseline": "max_prob",
             "operating_point": r.operating_point, "value": r.delta_vs_baseline, "low": r.delta_low,
             "high": r.delta_high, "n": int(r.n_adv), "verdict": verdict(r.delta_low, r.delta_high)}
            for r in d.itertuples()]


def ood_answer(detection: pd.DataFrame) -> list[dict]:
    """Claim (f), "MC dropout's uncertainty flags inputs of no known class": per model and MC score,
    AUROC(score) − AUROC(softmax) on the out-of-distribution images against the clean-correct test
    images (the detection rows of reference ``ood``), paired over the same resampled images; "holds"
    when the score beats the softmax."""
    d = detection[(detection["reference"] == OOD) & detection["delta_vs_baseline"].notna()]
    return [{"claim": "mc_flags_ood", "measure": r.score, "model": r.model, "attack": OOD, "baseline": "max_prob",
             "value": r.delta_vs_baseline, "low": r.delta_low, "high": r.delta_high, "n": int(r.n_adv),
             "verdict": verdict(r.delta_low, r.delta_high)} for r in d.itertuples()]


def adaptive_effect(adaptive: pd.DataFrame) -> list[dict]:
    """Claim (d), "an attacker who knows MC dropout evades it": per model, adaptive attack, budget and MC
    score, AUROC(adaptive) − AUROC(its non-adaptive baseline) on the images both attacked (from the
    adaptive table, paired); "holds" when the adaptive attack lowers the AUROC."""
    return [{"claim": "adaptive_evades", "measure": r.score, "model": r.model, "attack": r.attack,
             "baseline": r.baseline, "eps": r.eps, "value": r.delta, "low": r.delta_low, "high": r.delta_high,
             "n": int(r.n_clean), "verdict": verdict(r.delta_low, r.delta_high, supports=-1)}
            for r in adaptive.itertuples()]


def efficiency(methods: pd.DataFrame) -> list[dict]:
    """Claim (e), "MC dropout is more computationally efficient [than ensembles] while still providing
    similar benefits": per ensemble, from the methods table, the paired differences ensemble − MC dropout
    (the reference row, T passes) in accuracy, NLL and ECE over the clean test images, each "holds" when
    the ensemble is not distinguishably better (similar, or MC dropout better) and "does not hold" when it
    is; the training cost ratio (images seen; the time per image is the methods table's) with no interval;
    and one ``overall`` row
    per ensemble with the answer of ``equal_cost.verdict`` (holds, does not hold, partly)."""
    from .equal_cost import verdict as answer

    if methods is None or methods.empty or methods["reference"].isna().all():
        return []
    judged = answer(methods)
    if not judged["ensembles"]:  # a run without an ensemble has nothing to compare MC dropout with
        return []
    ref_key = judged["reference"]
    out = []
    for e in judged["ensembles"]:
        row = methods[methods["model"] == e["model"]].iloc[0]
        for name, sign in (("accuracy", 1), ("nll", -1), ("ece", -1)):
            low, high = row[f"{name}_vs_reference_low"], row[f"{name}_vs_reference_high"]
            better = verdict(low, high, supports=sign) == HOLDS  # the ensemble distinguishably better
            out.append({"claim": "mc_efficient", "measure": f"{name}_vs_mc", "model": e["model"], "baseline": ref_key,
                        "value": row[f"{name}_vs_reference"], "low": low, "high": high, "n": int(row["n_images"]),
                        "verdict": FAILS if better else HOLDS})
        # The time ratio is in the methods table (seconds_per_image): a timing, not a figure a rerun repeats.
        out.append({"claim": "mc_efficient", "measure": "train_images_ratio", "model": e["model"], "baseline": ref_key,
                    "value": e["train_ratio"], "low": float("nan"), "high": float("nan"), "n": int(row["n_images"]),
                    "verdict": ""})
        overall = HOLDS if not e["better"] and e["cheaper_training"] and e["faster_inference"] else \
            FAILS if e["better"] and not e["faster_inference"] else PARTLY
        out.append({"claim": "mc_efficient", "measure": "overall", "model": e["model"], "baseline": ref_key,
                    "value": float("nan"), "low": float("nan"), "high": float("nan"), "n": int(row["n_images"]),
                    "verdict": overall})
    return out


def findings(uncertainty: pd.DataFrame, attacks: pd.DataFrame | None = None, survival: pd.DataFrame | None = None,
             detection: pd.DataFrame | None = None, adaptive: pd.DataFrame | None = None, resamples: int = 1000,
             seed: int = 0, methods: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every finding of the run (``COLUMNS``): claim (a) per MC-dropout model from the uncertainty table,
    on the clean images (attack and operating point empty) and under each attack at its minimal and
    confident points (the clean-correct images it attacked, as attacked); claim (b) from the attacks and
    survival tables (every model), (c) and (f) from detection and (d) from adaptive (MC-dropout models: the
    claims are about MC dropout), (e) from the methods table (each when given)."""
    out = []
    mc = set(uncertainty.loc[uncertainty["dropout_p"].notna(), "model"])  # MC dropout's models have a rate
    uncertainty = uncertainty[uncertainty["model"].isin(mc)]
    if detection is not None and len(detection):
        detection = detection[detection["model"].isin(mc)]
    if adaptive is not None and len(adaptive):
        adaptive = adaptive[adaptive["model"].isin(mc)]
    plain = uncertainty[uncertainty["condition"] == CLEAN]
    correct = set(zip(plain.loc[plain["plain_pred"] == plain["label"], "model"],
                      plain.loc[plain["plain_pred"] == plain["label"], "image_id"]))
    mine = uncertainty[~uncertainty["noise"].astype(bool)
                       & (uncertainty["condition"].eq(CLEAN) | uncertainty["operating_point"].isin([MINIMAL, CONFIDENT]))]
    for k, ((model, condition), group) in enumerate(mine.groupby(["model", "condition"], sort=True)):
        attack = None if condition == CLEAN else group["attack"].iloc[0]
        point = None if condition == CLEAN else group["operating_point"].iloc[0]
        if attack is not None:
            group = group[[(model, i) in correct for i in group["image_id"]]]
        if len(group) < MIN_IMAGES:
            continue
        for r in confidence_accuracy(group["true_prob"].to_numpy(), group["confidence"].to_numpy(), resamples,
                                     seed + k):
            out.append({"claim": "confidence_accuracy", "model": model, "attack": attack, "operating_point": point, **r})
    if attacks is not None and len(attacks):
        out += perceptibility(attacks, resamples, seed + 1000)
    if survival is not None and len(survival):
        out += robustness(survival, resamples, seed + 2000)
    if detection is not None and len(detection):
        out += detection_answer(detection)
        out += ood_answer(detection)
    if adaptive is not None and len(adaptive):
        out += adaptive_effect(adaptive)
    if methods is not None and len(methods):
        out += efficiency(methods)
    return pd.DataFrame(out, columns=COLUMNS)
