"""The rows each chart plots: selections and joins of a run's tables, one function per chart family
(DataFrame in, DataFrame out). Statistics come computed from the tables; nothing here aggregates."""
from __future__ import annotations

import numpy as np
import pandas as pd

from compute.contract import BUDGET, CLEAN, MINIMAL, OOD, OPERATING_POINTS
from compute.findings import verdict

POINT_COLUMNS = ["image_id", "class_name", "pred_name", "correct", "confidence", "true_prob", "top_prob",
                 "entropy", "mutual_info", "variation_ratio"]


def image_points(uncertainty: pd.DataFrame, class_names: list[str], model: str,
                 condition: str = CLEAN) -> pd.DataFrame:
    """One row per image for model ``model`` and ``condition``: the columns the charts plot."""
    rows = uncertainty[(uncertainty["model"] == model) & (uncertainty["condition"] == condition)]
    names = pd.Series(class_names)
    out = pd.DataFrame({
        "image_id": rows["image_id"].astype(int).to_numpy(),
        "class_name": names[rows["label"].to_numpy()].to_numpy(),
        "pred_name": names[rows["pred"].to_numpy()].to_numpy(),
        "correct": (rows["pred"] == rows["label"]).to_numpy(),
    })
    for col in POINT_COLUMNS[4:]:
        out[col] = rows[col].to_numpy().round(5)
    return out.sort_values("image_id", kind="stable").reset_index(drop=True)


def robustness_points(robustness: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Accuracy under the ranking attack per (model, eps) from the robustness table; ``model`` is the
    model's label (``labels``: key -> label)."""
    out = robustness[["model", "eps", "accuracy"]].copy()
    out["model"] = out["model"].map(labels)
    return out.round(5).reset_index(drop=True)


ATTACK_POINT_COLUMNS = ["image_id", "attack", "class_name", "adv_name", "clean_correct", "success", "l2", "linf",
                        "perceptual_distance", "entropy", "entropy_clean", "mutual_info", "mutual_info_clean",
                        "fooled_share"]


def attack_points(attacks: pd.DataFrame, uncertainty: pd.DataFrame, images: pd.DataFrame, class_names: list[str],
                  model: str, labels: dict[str, str]) -> pd.DataFrame:
    """One row per (image, attack) for model ``model``: the minimal adversarial's outcome, its
    distortion, and MC-dropout uncertainty of the adversarial next to the clean image's."""
    rows = attacks[(attacks["model"] == model) & (attacks["operating_point"] == MINIMAL)]
    unc = uncertainty[uncertainty["model"] == model].set_index(["image_id", "condition"])
    clean = unc.xs(CLEAN, level="condition")
    names = pd.Series(class_names)
    adv_key = pd.MultiIndex.from_arrays([rows["image_id"], rows["attack"]])
    label = rows["image_id"].map(images.set_index("image_id")["label"])
    out = pd.DataFrame({
        "image_id": rows["image_id"].to_numpy(), "attack": rows["attack"].map(labels).to_numpy(),
        "class_name": names[label.to_numpy()].to_numpy(), "adv_name": names[rows["adv_pred"].to_numpy()].to_numpy(),
        "clean_correct": rows["clean_correct"].to_numpy(),
        "success": rows["success"].to_numpy(), "l2": rows["l2"].to_numpy(), "linf": rows["linf"].to_numpy(),
        "perceptual_distance": rows["perceptual_distance"].to_numpy(),
        "entropy": unc.loc[adv_key, "entropy"].to_numpy(),
        "entropy_clean": clean.loc[rows["image_id"], "entropy"].to_numpy(),
        "mutual_info": unc.loc[adv_key, "mutual_info"].to_numpy(),
        "mutual_info_clean": clean.loc[rows["image_id"], "mutual_info"].to_numpy(),
        "fooled_share": unc.loc[adv_key, "fooled_share"].to_numpy(),
    })
    floats = ["l2", "linf", "perceptual_distance", "entropy", "entropy_clean", "mutual_info", "mutual_info_clean",
              "fooled_share"]
    out[floats] = out[floats].round(4)
    return out.sort_values(["attack", "image_id"], kind="stable").reset_index(drop=True)


def success_points(success_rates: pd.DataFrame, model: str, labels: dict[str, str]) -> pd.DataFrame:
    """Success rate per (class, attack, variant) for model ``model``; a variant is the attack (named
    by ``labels``: attack -> its card's label) at one budget ("FGSM ε=0.1") or, for an attack without
    budgets, the attack at an operating point ("L-BFGS minimal", "L-BFGS confident"), named as the
    detection page names its rows (``variant``)."""
    rows = success_rates[success_rates["model"] == model]
    names = [variant(a, o, None if e != e else float(e), labels)
             for a, o, e in zip(rows["attack"], rows["operating_point"], rows["eps"])]
    out = pd.DataFrame({"class_name": rows["class_name"].to_numpy(), "attack": rows["attack"].map(labels).to_numpy(),
                        "variant": names, "success_rate": rows["success_rate"].to_numpy(),
                        "percent": (100 * rows["success_rate"]).round().astype(int).to_numpy(),
                        "n_images": rows["n_attacked"].to_numpy()})
    # Within an attack: minimal, confident, then its budgets by ε (OPERATING_POINTS' order).
    out["order"] = [OPERATING_POINTS.index(o) for o in rows["operating_point"]]
    out["eps"] = rows["eps"].fillna(0.0).to_numpy()
    out = out.round(5).sort_values(["attack", "order", "eps", "class_name"], kind="stable")
    return out.drop(columns=["order", "eps"]).reset_index(drop=True)


KINDS = {"adversarial": "adversarial", "noise": "noise control", "unattacked": "unattacked",
         "transfer": "made on one member", OOD: "out-of-distribution"}  # reference -> name (transfer: an
# ensemble's, table transfer; ood: the run's out-of-distribution images, table ood)


def variant(attack: str, operating_point: str, eps: float | None, labels: dict[str, str],
            reference: str = "adversarial") -> str:
    """How a detection row's positives are named on the page: "FGSM minimal", "L-BFGS confident",
    "FGSM ε=0.1"; "noise ~ FGSM minimal" for its noise control and "unattacked ~ FGSM minimal" for the
    same images unattacked (``labels``: attack -> card label); the OOD rows (attack and reference
    ``ood``) by ``labels["ood"]``, the OOD set's name."""
    if reference == OOD:
        return labels[OOD]
    point = f"ε={eps:g}" if operating_point == BUDGET else operating_point
    name = f"{labels[attack]} {point}"
    return name if reference == "adversarial" else f"{reference} ~ {name}"


def _variants(frame: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    return [variant(a, o, None if e != e else e, labels, r)
            for a, o, e, r in zip(frame["attack"], frame["operating_point"], frame["eps"], frame["reference"])]


def detection_points(detection: pd.DataFrame, model: str, labels: dict[str, str]) -> pd.DataFrame:
    """One row per (positives, score) for model ``model``: AUROC with its interval, AUPR, FPR at
    95% TPR (and whether ties limit it), both populations' N, the paired difference from max_prob, the
    attack and what the positives are (``kind``: adversarial, noise control, unattacked)."""
    rows = detection[detection["model"] == model]
    out = pd.DataFrame({
        "variant": _variants(rows, labels), "attack": rows["attack"].to_numpy(),
        "family": rows["attack"].to_numpy(), "reference": rows["reference"].to_numpy(),
        "kind": rows["reference"].map(KINDS).to_numpy(),
        "score": rows["score"].to_numpy(), "auroc": rows["auroc"].to_numpy(), "auroc_low": rows["auroc_low"].to_numpy(),
        "auroc_high": rows["auroc_high"].to_numpy(), "aupr": rows["aupr"].to_numpy(),
        "fpr_at_95tpr": rows["fpr_at_95tpr"].to_numpy(), "fpr_tied": rows["fpr_tied"].to_numpy(),
        "n_clean": rows["n_clean"].to_numpy(), "n_adv": rows["n_adv"].to_numpy(),
        "delta_vs_baseline": rows["delta_vs_baseline"].to_numpy(), "delta_low": rows["delta_low"].to_numpy(),
        "delta_high": rows["delta_high"].to_numpy()})
    return out[out["n_adv"] > 0].round(4).reset_index(drop=True)


def roc_curve_points(roc: pd.DataFrame, model: str, labels: dict[str, str]) -> pd.DataFrame:
    """The ROC curves of model ``model``: (variant, family, score, fpr, tpr)."""
    rows = roc[roc["model"] == model]
    out = pd.DataFrame({"variant": _variants(rows, labels),
                        "family": rows["attack"].to_numpy(),
                        "score": rows["score"].to_numpy(), "fpr": rows["fpr"].to_numpy(), "tpr": rows["tpr"].to_numpy()})
    return out.round(4).reset_index(drop=True)


def eps_curve_points(detection: pd.DataFrame, model: str, attack: str, label: str) -> pd.DataFrame:
    """Mean score against the budget ε of ``attack`` (labelled ``label``) for model ``model``: the
    successful adversarials at each budget and their noise controls, and at ε 0 the clean-correct
    images. max_prob is shown as itself (the detection table stores it negated, as flagged when low)."""
    rows = detection[(detection["model"] == model) & (detection["operating_point"] == BUDGET)
                     & (detection["attack"] == attack) & detection["reference"].isin(["adversarial", "noise"])
                     & (detection["n_adv"] > 0)]
    # Float whatever the rows (an empty selection: no budget fooled the model; its scores typed as strings).
    sign = pd.Series(np.where(rows["score"].to_numpy() == "max_prob", -1.0, 1.0), index=rows.index)
    out = pd.DataFrame({"score": rows["score"].to_numpy(), "eps": rows["eps"].to_numpy(),
                        "image": ["noise control" if r == "noise" else f"{label} adversarial" for r in rows["reference"]],
                        "mean": (rows["mean_adv"] * sign).to_numpy(), "n_images": rows["n_adv"].to_numpy()})
    clean = rows[rows["reference"] == "adversarial"].drop_duplicates("score")
    for image in (f"{label} adversarial", "noise control"):
        out = pd.concat([out, pd.DataFrame({"score": clean["score"].to_numpy(), "eps": 0.0, "image": image,
                                            "mean": (clean["mean_clean"] * sign[clean.index]).to_numpy(),
                                            "n_images": clean["n_clean"].to_numpy()})], ignore_index=True)
    return out.sort_values(["score", "image", "eps"], kind="stable").round(5).reset_index(drop=True)


def risk_points(risk_coverage: pd.DataFrame, model: str, labels: dict[str, str]) -> pd.DataFrame:
    """Risk-coverage curves of model ``model``: (variant as the detection views name it, or "clean";
    score, coverage, risk, aurc, e_aurc with its interval, random_aurc, n_images)."""
    rows = risk_coverage[risk_coverage["model"] == model]
    label = ["clean" if a is None or a != a else variant(a, o, None if e != e else e, labels)
             for a, o, e in zip(rows["attack"], rows["operating_point"], rows["eps"])]
    out = pd.DataFrame({"variant": label, "score": rows["score"].to_numpy(), "coverage": rows["coverage"].to_numpy(),
                        "risk": rows["risk"].to_numpy(), "aurc": rows["aurc"].to_numpy(),
                        "e_aurc": rows["e_aurc"].to_numpy(), "e_aurc_low": rows["e_aurc_low"].to_numpy(),
                        "e_aurc_high": rows["e_aurc_high"].to_numpy(), "random_aurc": rows["random_aurc"].to_numpy(),
                        "n_images": rows["n_images"].to_numpy()})
    return out.round(5).reset_index(drop=True)


# Claim (a)'s two least-squares fits of confidence (compute/findings.py): a line in p̄, and a line in
# p̄(1 − p̄), the shape of the bound Var ≤ p̄(1 − p̄); each name with its measures' prefix and feature.
FITS = {"a line in p̄": ("line", lambda p: p), "a line in p̄(1 − p̄), the bound's shape": ("bound", lambda p: p * (1 - p))}


def confidence_fit_points(uncertainty: pd.DataFrame, findings: pd.DataFrame,
                          labels: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Claim (a)'s figure data: every clean image (model label, image_id, true_prob, confidence), and
    per model each of ``FITS``, from its intercept and slope in the findings table, drawn over 101
    values of p̄ from 0 to 1 (model, fit, true_prob, confidence); ``labels``: model key -> label."""
    clean = uncertainty[uncertainty["condition"] == CLEAN]
    points = pd.DataFrame({"model": clean["model"].map(labels), "image_id": clean["image_id"],
                           "true_prob": clean["true_prob"].round(4), "confidence": clean["confidence"].round(5)})
    fitted = findings[(findings["claim"] == "confidence_accuracy") & findings["attack"].isna()]
    grid = np.linspace(0.0, 1.0, 101)
    fits = []
    for key, g in fitted.groupby("model", sort=False):
        value = g.set_index("measure")["value"]
        for name, (prefix, feature) in FITS.items():
            fits.append(pd.DataFrame({"model": labels[key], "fit": name, "true_prob": grid,
                                      "confidence": value[f"{prefix}_intercept"] + value[f"{prefix}_slope"] * feature(grid)}))
    empty = pd.DataFrame(columns=["model", "fit", "true_prob", "confidence"])  # a run too small for findings
    return points.reset_index(drop=True), pd.concat(fits, ignore_index=True) if fits else empty


def comparison_rows(findings: pd.DataFrame, claim: str, labels: dict[str, str], panel: dict[str, str],
                    comparison) -> pd.DataFrame:
    """The paired rows of one claim (those with a baseline) as ``charts.interval_panels`` draws them:
    panel (``panel``: measure -> its label, in panel order; other measures left out), comparison
    (``comparison(row)``: the label of what is compared), model (its label), value, low, high, n,
    verdict; ``labels``: model key -> label."""
    rows = findings[(findings["claim"] == claim) & findings["baseline"].notna() & findings["measure"].isin(list(panel))]
    if rows.empty:
        return pd.DataFrame(columns=["panel", "comparison", "model", "value", "low", "high", "n", "verdict"])
    return pd.DataFrame({"panel": rows["measure"].map(panel), "comparison": [comparison(r) for r in rows.itertuples()],
                         "model": rows["model"].map(labels), "value": rows["value"].round(5),
                         "low": rows["low"].round(5), "high": rows["high"].round(5), "n": rows["n"].astype(int),
                         "verdict": rows["verdict"]}).reset_index(drop=True)


def delta_rows(detection: pd.DataFrame, models: dict[str, str], attack_labels: dict[str, str]) -> pd.DataFrame:
    """The detection page's cross-model figure: per MC score (panel), adversarial set (comparison: each
    attack at its minimal and confident points and every budget, named as the detection view names
    them) and model (``models``: key -> label), AUROC(score) − AUROC(max_prob) on the same successful
    adversarials and clean-correct images, with its paired image-level 95% interval and N (positives);
    the verdict says whether the interval clears 0. The OOD images, where the run has them, are one
    comparison more, against the same clean-correct images."""
    frames = []
    for key, label in models.items():
        p = detection_points(detection, key, attack_labels)
        p = p[p["reference"].isin(["adversarial", OOD]) & p["delta_vs_baseline"].notna()]
        frames.append(pd.DataFrame({"panel": p["score"].str.replace("_", " "), "comparison": p["variant"],
                                    "model": label, "value": p["delta_vs_baseline"], "low": p["delta_low"],
                                    "high": p["delta_high"], "n": p["n_adv"].astype(int),
                                    "verdict": [verdict(lo, hi) for lo, hi in zip(p["delta_low"], p["delta_high"])]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["panel", "comparison", "model", "value", "low", "high", "n", "verdict"])


def success_rows(summary: pd.DataFrame, attack_labels: dict[str, str], labels: dict[str, str]) -> pd.DataFrame:
    """The attacks page's cross-model figure: per operating point (panel), attack (comparison) and model,
    the success rate over the attacked (clean-correct) images with its Wilson 95% interval and N."""
    s = summary[summary["attack"].isin(list(attack_labels))]
    order = {a: k for k, a in enumerate(attack_labels)}
    s = s.assign(_o=s["attack"].map(order)).sort_values("_o", kind="stable")
    return pd.DataFrame({"panel": s["operating_point"], "comparison": s["attack"].map(attack_labels),
                         "model": s["model"].map(labels), "value": s["success_rate"].round(4),
                         "low": s["success_low"].round(4), "high": s["success_high"].round(4),
                         "n": s["n_attacked"].astype(int), "verdict": ""}).reset_index(drop=True)


# The equal-cost figure's panels: the methods table's column -> its label, in panel order.
EQUAL_COST_PANELS = {"accuracy": "accuracy (clean)", "nll": "NLL (clean)", "ece": "ECE (clean)",
                     "delta_confident": "detection Δ, confident sets", "seconds_per_image": "ms per image",
                     "train_images": "training images (epochs × images)"}


def equal_cost_rows(methods: pd.DataFrame) -> pd.DataFrame:
    """The methods table (compute/equal_cost.py) as ``charts.equal_cost`` draws it: per row of the table
    (its label) and panel, value with its 95% interval (``cost``: a cost, no interval, drawn as a bar),
    method label, N; a figure not measured (no adaptive attack) has no row."""
    frames = []
    for column, panel in EQUAL_COST_PANELS.items():
        scale = 1000.0 if column == "seconds_per_image" else 1.0
        has = f"{column}_low" in methods
        n = methods["n_confident"] if column == "delta_confident" else methods["n_images"]
        value = (methods[column].astype(float) * scale).round(6)
        frames.append(pd.DataFrame({
            "panel": panel, "row": methods["label"], "method": methods["method_label"], "value": value,
            "low": methods[f"{column}_low"].astype(float).round(6) if has else value,
            "high": methods[f"{column}_high"].astype(float).round(6) if has else value,
            "cost": not has, "n": n.astype(int)}))
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows[["value", "low", "high"]].notna().all(axis=1)].reset_index(drop=True)  # JSON has no NaN
