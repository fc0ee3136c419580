"""The rows each chart plots: selections and joins of a run's tables, one function per chart family
(DataFrame in, DataFrame out). Statistics come computed from the tables; nothing here aggregates."""
from __future__ import annotations

import pandas as pd

POINT_COLUMNS = ["image_id", "class_name", "pred_name", "correct", "confidence", "true_prob", "top_prob",
                 "entropy", "mutual_info", "variation_ratio"]


def image_points(uncertainty: pd.DataFrame, class_names: list[str], p: float,
                 condition: str = "clean") -> pd.DataFrame:
    """One row per image for dropout rate ``p`` and ``condition``: the columns the charts plot."""
    rows = uncertainty[(uncertainty["dropout_p"] == p) & (uncertainty["condition"] == condition)]
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


def robustness_points(robustness: pd.DataFrame) -> pd.DataFrame:
    """Accuracy under FGSM per (model, eps) from the robustness table, the model as a label."""
    out = robustness[["dropout_p", "eps", "accuracy"]].copy()
    out["dropout_p"] = out["dropout_p"].map(lambda p: f"p = {p:g}")
    return out.round(5).reset_index(drop=True)


ATTACK_POINT_COLUMNS = ["image_id", "attack", "class_name", "adv_name", "clean_correct", "success", "l2", "linf",
                        "perceptual_distance", "entropy", "entropy_clean", "mutual_info", "mutual_info_clean",
                        "fooled_share"]


def attack_points(attacks: pd.DataFrame, uncertainty: pd.DataFrame, images: pd.DataFrame, class_names: list[str],
                  p: float) -> pd.DataFrame:
    """One row per (image, attack) for dropout rate ``p``: the minimal adversarial's outcome, its
    distortion, and MC-dropout uncertainty of the adversarial next to the clean image's."""
    rows = attacks[(attacks["dropout_p"] == p) & attacks["minimal"]]
    unc = uncertainty[uncertainty["dropout_p"] == p].set_index(["image_id", "condition"])
    clean = unc.xs("clean", level="condition")
    names = pd.Series(class_names)
    adv_key = pd.MultiIndex.from_arrays([rows["image_id"], rows["attack"]])
    label = rows["image_id"].map(images.set_index("image_id")["label"])
    out = pd.DataFrame({
        "image_id": rows["image_id"].to_numpy(), "attack": rows["attack"].to_numpy(),
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


def success_points(success_rates: pd.DataFrame, p: float) -> pd.DataFrame:
    """Success rate per (class, attack, variant) for dropout rate ``p``; a variant is the attack at one
    budget ("fgsm ε=0.1") or, for an attack without budgets, the attack itself ("lbfgs")."""
    rows = success_rates[success_rates["dropout_p"] == p]
    variant = [a if e != e else f"{a} ε={e:g}" for a, e in zip(rows["attack"], rows["eps"])]
    out = pd.DataFrame({"class_name": rows["class_name"].to_numpy(), "attack": rows["attack"].to_numpy(),
                        "variant": variant, "success_rate": rows["success_rate"].to_numpy(),
                        "images": rows["images"].to_numpy()})
    return out.round(5).sort_values(["attack", "variant", "class_name"], kind="stable").reset_index(drop=True)


EXPLORER_COLUMNS = ["image_id", "dropout_p", "class_name", "pred_name", "correct", "entropy", "mutual_info",
                    "min_eps", "fooled", "href"]


def explorer_points(uncertainty: pd.DataFrame, attacks: pd.DataFrame, class_names: list[str],
                    attack_names: list[str], search_max: float) -> pd.DataFrame:
    """One row per (image, dropout rate): clean prediction and uncertainty, FGSM robustness
    (min_eps; never flipped = search_max; wrong before the attack = 0), the attacks that fooled it,
    and its view's link. ``correct`` is the clean prediction with dropout off (the attacked model);
    an image with ``correct`` false was wrong before the attack and not attacked."""
    clean = uncertainty[uncertainty["condition"] == "clean"]
    names = pd.Series(class_names)
    out = pd.DataFrame({
        "image_id": clean["image_id"].to_numpy(), "dropout_p": clean["dropout_p"].to_numpy(),
        "class_name": names[clean["label"].to_numpy()].to_numpy(), "pred_name": names[clean["pred"].to_numpy()].to_numpy(),
        "correct": (clean["pred"] == clean["label"]).to_numpy(),
        "entropy": clean["entropy"].round(4).to_numpy(), "mutual_info": clean["mutual_info"].round(4).to_numpy(),
    })
    minimal = attacks[attacks["minimal"]].set_index(["image_id", "dropout_p", "attack"])
    key = [out["image_id"], out["dropout_p"]]
    fooled = pd.Series([""] * len(out))
    for attack in attack_names:
        idx = pd.MultiIndex.from_arrays([*key, [attack] * len(out)])
        hit = minimal.loc[idx, "success"].to_numpy()
        fooled = fooled.where(~hit, fooled + " " + attack)
        if attack == "fgsm":
            out["min_eps"] = minimal.loc[idx, "min_eps"].fillna(search_max).round(5).to_numpy()
        out["correct"] = minimal.loc[idx, "clean_correct"].to_numpy()
    if "min_eps" not in out:
        out["min_eps"] = 0.0
    out.loc[~out["correct"].astype(bool), "min_eps"] = 0.0  # wrong without any perturbation
    out["fooled"] = fooled.str.strip().to_numpy()
    out["href"] = [f"image.html#id={i}" for i in out["image_id"]]
    return out[EXPLORER_COLUMNS].sort_values(["dropout_p", "image_id"], kind="stable").reset_index(drop=True)
