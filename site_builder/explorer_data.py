"""The explorer's data: one compact record of every test image per model, shared by the explorer
(grid and feature map) and the per-image view (whose previous / next follow the explorer's sort and
filter). Written once per run as ``data/explorer.js``, loaded by a <script> tag (fetch() of a local
file fails from file://), packed (render.packed).

Columns are in the images table's order (a tile's position in its sprite sheet is that order).
Scores are integers in units of SCALE (static/explorer-state.js divides them back); map
coordinates are integers 0..GRID over the box of each model's map (clean and placed points).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from compute.contract import BUDGET, CLEAN, CONFIDENT, MINIMAL, PALETTE, TILED_POINTS, class_colours, condition_name

from .load import Run

SCALE = 10_000  # scores are stored as round(value * SCALE)
GRID = 4095  # map coordinates are stored as integers 0..GRID

# Attack outcome codes at one operating point, as the grid marks and filters name them. "not attacked":
# the attack has no adversarial of the image at that point (it ran on a subset, or has no such budget).
OUTCOMES = {"not attacked": 0, "wrong before": 1, "fooled": 2, "not fooled": 3}


def point_key(operating_point: str, eps: float | None) -> str:
    """An operating point as the explorer's hash names it: "minimal", "confident", "eps0.1"."""
    return f"eps{eps:g}" if operating_point == BUDGET else operating_point


def _points(attacks: pd.DataFrame, kappa: float) -> list[dict[str, Any]]:
    """Every operating point some attack of the run has, in a reader's order (minimal, confident, then the
    budgets by epsilon), each with its label and the attacks that have it."""
    seen = attacks[["attack", "operating_point", "eps"]].drop_duplicates()
    order = {MINIMAL: 0, CONFIDENT: 1, BUDGET: 2}
    keys = sorted({(r.operating_point, None if r.eps != r.eps else float(r.eps)) for r in seen.itertuples()},
                  key=lambda t: (order[t[0]], t[1] or 0.0))
    out = []
    for point, eps in keys:
        rows = seen[(seen["operating_point"] == point) & ((seen["eps"] == eps) if eps is not None else seen["eps"].isna())]
        label = ("minimal (the smallest change found that fools)" if point == MINIMAL
                 else f"confident (a wrong class at P ≥ {kappa:g})" if point == CONFIDENT else f"budget ε = {eps:g}")
        out.append({"key": point_key(point, eps), "label": label, "attacks": sorted(rows["attack"].unique().tolist())})
    return out


def default_point(points: list[dict[str, Any]], outcomes: dict[str, dict[str, list[int]]], attacks: list[str]) -> str:
    """The explorer's default operating point: the most informative one, where the marks vary most.

    Among the points every attack has (all points when none is shared), the one whose rarer outcome of
    "fooled" and "not fooled", counted over every (attack, image) mark, is largest; ties go to the earlier
    point. At the minimal point every clean-correct image is fooled by construction, so it is never
    chosen while another point varies. ``outcomes``: point key -> attack -> codes (one model's)."""
    shared = [p for p in points if set(attacks) <= set(p["attacks"])] or points

    def rarer(p: dict[str, Any]) -> int:
        codes = [c for a in p["attacks"] for c in outcomes[p["key"]][a]]
        return min(codes.count(OUTCOMES["fooled"]), codes.count(OUTCOMES["not fooled"]))

    return max(shared, key=lambda p: (rarer(p), -points.index(p)))["key"] if shared else MINIMAL


def _scaled(values: pd.Series) -> list[int | None]:
    return [None if v != v else int(round(float(v) * SCALE)) for v in values]


def _coordinates(frames: dict[str, pd.DataFrame], order: pd.Index) -> dict[str, dict[str, list[int | None]]]:
    """condition -> {"x": [...], "y": [...]} in image order, scaled together to 0..GRID (null: not placed)."""
    both = pd.concat(frames.values())
    lo = np.array([both["x"].min(), both["y"].min()])
    span = np.array([both["x"].max(), both["y"].max()]) - lo
    span = np.where(span > 0, span, 1.0)
    out = {}
    for condition, rows in frames.items():
        at = rows.set_index("image_id").reindex(order)
        out[condition] = {
            axis: [None if v != v else int(round((float(v) - lo[k]) / span[k] * GRID)) for v in at[axis]]
            for k, axis in enumerate(("x", "y"))}
    return out


def _codes(rows: pd.DataFrame) -> list[int]:
    """OUTCOMES codes of one (model, attack, point)'s rows, reindexed to image order (NaN: not attacked)."""
    code = np.where(rows["clean_correct"].isna(), OUTCOMES["not attacked"],
                    np.where(~rows["clean_correct"].fillna(True).astype(bool), OUTCOMES["wrong before"],
                             np.where(rows["success"].fillna(False).astype(bool), OUTCOMES["fooled"],
                                      OUTCOMES["not fooled"])))
    return code.astype(int).tolist()


def explorer_data(run: Run) -> dict[str, Any]:
    """Every test image, per model: clean prediction of the model with dropout off (``plain_pred``),
    the uncertainty method's entropy and mutual information, max softmax probability (dropout off),
    the ranking attack's score (``ranking``: its card's ranking column on successes, e.g. FGSM's
    smallest flipping epsilon; null: never fooled within its budget, or wrong before the attack), each
    attack's outcome at every operating point (``outcomes``: point key -> attack -> OUTCOMES code;
    ``points`` lists the points, ``default_point`` is the one the explorer opens at, chosen on the first
    model), and the feature maps (per method, the clean images and each attack's minimal and confident
    adversarials). With the palette: one colour per class and outcome."""
    order = pd.Index(run.images["image_id"].to_numpy())
    unc = run.uncertainty[run.uncertainty["condition"] == CLEAN]
    minimal = run.attacks[run.attacks["operating_point"] == MINIMAL]
    points = _points(run.attacks, run.config.attacks.kappa)
    keyed = run.attacks.assign(point=[point_key(p, e) for p, e in zip(run.attacks["operating_point"], run.attacks["eps"])])
    ranking = run.ranking
    models = []
    for key in run.model_keys:
        clean = unc[unc["model"] == key].set_index("image_id").reindex(order)
        model: dict[str, Any] = {
            "key": key, "label": run.model(key)["label"], "accuracy": run.model(key)["accuracy"],
            "plain_pred": clean["plain_pred"].astype(int).tolist(),
            "entropy": _scaled(clean["entropy"]), "mutual_info": _scaled(clean["mutual_info"]),
            "max_prob": _scaled(clean["max_prob"]), "ranking": [None] * len(order), "outcomes": {}}
        mine = keyed[keyed["model"] == key]
        for p in points:
            at = mine[mine["point"] == p["key"]]
            model["outcomes"][p["key"]] = {
                attack: _codes(at[at["attack"] == attack].set_index("image_id").reindex(order))
                for attack in run.attack_names}
        if ranking:
            rows = minimal[(minimal["model"] == key) & (minimal["attack"] == ranking)].set_index("image_id").reindex(order)
            column = run.cards[ranking]["ranking_column"]
            model["ranking"] = _scaled(rows[column].where(rows["success"].fillna(False).astype(bool)))
        emb = run.embedding[run.embedding["model"] == key]
        model["maps"] = {method: _coordinates({c: f for c, f in emb[emb["method"] == method].groupby("condition")}, order)
                         for method in sorted(emb["method"].unique())}
        models.append(model)
    return {"ids": order.tolist(), "labels": run.images["label"].astype(int).tolist(),
            "class_names": run.class_names, "attacks": run.attack_names, "outcomes": OUTCOMES,
            "points": points,
            "default_point": default_point(points, models[0]["outcomes"], run.attack_names) if models else MINIMAL,
            "ranking": {"attack": ranking, "label": run.cards[ranking]["ranking_label"]} if ranking else None,
            "attack_labels": {a: run.cards[a]["label"] for a in run.attack_names},
            "conditions": {a: {point: condition_name(a, point) for point in TILED_POINTS} for a in run.attack_names},
            "colours": {"classes": class_colours(len(run.class_names)), "outcomes": PALETTE["outcome"],
                        "attacks": {a: run.cards[a]["colour"] for a in run.attack_names}},
            "scale": SCALE, "grid": GRID, "models": models}
