"""The per-image view's data: one compact record per test image, split into script files that the
view loads with a <script> tag (fetch() of a local file fails from file://), each packed
(render.packed)."""
from __future__ import annotations

from typing import Any

import numpy as np

from compute.contract import BUDGET, CLEAN

from .load import Run

CHUNK_SIZE = 500  # images per data file of the per-image view
PASS_BINS = 20  # bins of the true-class probability for the spread of the MC-dropout passes

ATTACK_FIELDS = ["clean_correct", "success", "adv_pred", "adv_prob", "l0", "l2", "linf", "perceptual_distance",
                 "flat_pixels_changed", "iterations", "min_eps", "c", "noise_l2", "noise_linf", "noise_pred"]
CONDITION_FIELDS = ["pred", "entropy", "mutual_info", "fooled_share", "mean_probs", "pass_histogram"]
ACTIVATION_FIELDS = ["layer", "condition", "maps", "sheet", "sheet_col", "sheet_row", "width", "height"]


def _num(value: Any, digits: int) -> float | None:
    value = float(value)
    return None if value != value else round(value, digits)


def image_records(run: Run) -> list[dict[str, Any]]:
    """Everything the per-image view shows, one compact record per test image (in images-table order).

    Per model (in run order): ``plain_pred``, the clean prediction with dropout off; conditions as lists of CONDITION_FIELDS in ``run.conditions`` order
    ("pass_histogram" counts the MC passes in PASS_BINS equal bins of the true-class probability; noise
    controls carry no probabilities or histogram), attacks as lists of ATTACK_FIELDS in
    ``run.attack_points`` order, activation-map tiles as lists of ACTIVATION_FIELDS, ``neighbours`` as
    [image id, distance] of the nearest clean test images in feature space (nearest first); null where the
    image has none (not attacked by an attack run on a subset; no noise control for a failure).
    Lists instead of objects keep the data files small (the full MNIST test set must fit a free host).
    """
    conditions = run.conditions
    shown = set(conditions)
    unc = {(int(r.image_id), r.model, r.condition): r for r in run.uncertainty.itertuples()
           if r.condition in shown}
    att = {(int(r.image_id), r.model, r.attack, r.operating_point): r
           for r in run.attacks[run.attacks["operating_point"] != BUDGET].itertuples()}
    acts: dict[tuple[int, str], list] = {}
    for m in run.activations.itertuples():
        acts.setdefault((int(m.image_id), m.model), []).append(
            [m.layer, m.condition, int(m.maps), f"tiles/{m.sheet}", int(m.sheet_col), int(m.sheet_row),
             int(m.tile_width), int(m.tile_height)])
    near: dict[tuple[int, str], list] = {}
    for n in run.neighbours.sort_values(["image_id", "model", "rank"]).itertuples():
        near.setdefault((int(n.image_id), n.model), []).append([int(n.neighbour_id), _num(n.distance, 3)])
    records = []
    for position, row in enumerate(run.images.itertuples()):
        image_id = int(row.image_id)
        models = []
        for key in run.model_keys:
            cond = []
            for c in conditions:
                u = unc.get((image_id, key, c))
                if u is None:
                    cond.append(None)
                    continue
                cond.append([int(u.pred), _num(u.entropy, 4), _num(u.mutual_info, 4), _num(u.fooled_share, 3),
                             None if u.noise else [_num(v, 3) for v in u.mean_probs],
                             None if u.noise else np.histogram(np.asarray(u.pass_true_prob, dtype=np.float64),
                                                               bins=PASS_BINS, range=(0.0, 1.0))[0].tolist()])
            results = []
            for a, point in run.attack_points:
                r = att.get((image_id, key, a, point))
                if r is None:
                    results.append(None)
                    continue
                results.append([int(bool(r.clean_correct)), int(bool(r.success)), int(r.adv_pred), _num(r.adv_prob, 4),
                                int(r.l0), _num(r.l2, 4), _num(r.linf, 4), _num(r.perceptual_distance, 2),
                                int(r.flat_pixels_changed), int(r.iterations), _num(r.min_eps, 5), _num(r.c, 5),
                                _num(r.noise_l2, 4), _num(r.noise_linf, 4),
                                None if r.noise_pred != r.noise_pred else int(r.noise_pred)])
            clean = unc.get((image_id, key, CLEAN))
            models.append({"plain_pred": None if clean is None else int(clean.plain_pred),
                           "conditions": cond, "attacks": results, "activations": acts.get((image_id, key), []),
                           "neighbours": near.get((image_id, key), [])})
        records.append({"image_id": image_id, "class_name": row.class_name, "pos": position, "models": models})
    return records


def image_chunks(run: Run, base: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The per-image data split into files of CHUNK_SIZE images: (index, {path under ``base``: records})."""
    records = sorted(image_records(run), key=lambda r: r["image_id"])
    index, files = [], {}
    for k in range(0, len(records), CHUNK_SIZE):
        part = records[k:k + CHUNK_SIZE]
        name = f"data/images-{k // CHUNK_SIZE:03d}.js"
        index.append({"first": part[0]["image_id"], "last": part[-1]["image_id"], "file": name})
        files[f"{base}/{name}"] = part
    return index, files
