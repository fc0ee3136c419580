"""The Parquet tables of a results directory: their schemas, and one way to write them.

Column names are the project's vocabulary: the same in Parquet, Python, templates and URLs.
docs/data-contract.md describes every column.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 5

f32, f64, i64 = pa.float32(), pa.float64(), pa.int64()

SCHEMAS: dict[str, pa.Schema] = {
    # One row per test image.
    "images": pa.schema([
        ("image_id", i64), ("label", i64), ("class_name", pa.string()),
        ("sheet", pa.string()), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # One row per (image_id, dropout_p, condition); condition is "clean" or one set of attacked images
    # (attacks.condition_name: "fgsm", "fgsm-confident", "fgsm-eps0.1", "noise-fgsm"...), which the
    # columns attack, operating_point, eps and noise spell out. plain_pred and max_prob: dropout off.
    "uncertainty": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("condition", pa.string()), ("attack", pa.string()),
        ("operating_point", pa.string()), ("eps", f64), ("noise", pa.bool_()), ("label", i64),
        ("plain_pred", i64), ("max_prob", f64), ("pred", i64), ("confidence", f64), ("true_prob", f64), ("top_prob", f64), ("entropy", f64),
        ("mutual_info", f64), ("variation_ratio", f64), ("fooled_share", f64), ("mean_probs", pa.list_(f32)),
        ("var_probs", pa.list_(f32)), ("pass_true_prob", pa.list_(f32)),
    ]),
    # One row per (image_id, dropout_p, attack, operating_point, eps): operating_point "minimal" (just
    # across the boundary), "confident" (a wrong class at probability >= kappa) or "budget" (eps set).
    # clean_correct false: wrong before the attack, not attacked, never a success. noise_*: the noise
    # control of a successful adversarial (its size and the dropout-off prediction); null otherwise.
    "attacks": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()),
        ("eps", f64), ("clean_correct", pa.bool_()), ("success", pa.bool_()), ("adv_pred", i64), ("adv_prob", f64),
        ("l0", i64), ("l2", f64), ("linf", f64), ("perceptual_distance", f64), ("flat_pixels_changed", i64),
        ("iterations", i64), ("min_eps", f64), ("c", f64), ("noise_l2", f64), ("noise_linf", f64),
        ("noise_pred", i64), ("seconds", f64),
    ]),
    # Where each adversarial (picture "adversarial") sits in the sprite sheets, per operating point;
    # originals are in the images table. (The site draws the perturbation from the two.)
    "tiles": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()),
        ("picture", pa.string()), ("sheet", pa.string()), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # Activation-map grids of selected images: one tile per (image, model, condition, conv layer).
    "activations": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("condition", pa.string()), ("layer", pa.string()),
        ("maps", i64), ("tile_width", i64), ("tile_height", i64), ("sheet", pa.string()), ("sheet_col", i64),
        ("sheet_row", i64),
    ]),
    # The feature map (compute/embedding.py): per model, method ("pca" or "tsne", fitted on the clean
    # images) and condition ("clean", or an attack's minimal "fgsm" or confident "fgsm-confident"
    # adversarial, placed without refitting), the 2-D position of each image's penultimate features.
    "embedding": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("condition", pa.string()), ("method", pa.string()),
        ("x", f64), ("y", f64),
    ]),
    # Per model, each clean test image's nearest other clean test images in the full feature space
    # (rank 1 = nearest; Euclidean distance between penultimate features, dropout off).
    "neighbours": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("rank", i64), ("neighbour_id", i64), ("distance", f64),
    ]),
    # Run-level figures per (dropout_p, condition), for all images (class_name null) and per class.
    "metrics": pa.schema([
        ("dropout_p", f64), ("condition", pa.string()), ("class_name", pa.string()), ("images", i64),
        ("accuracy", f64), ("ece", f64), ("nll", f64), ("brier", f64), ("mean_entropy", f64),
        ("mean_mutual_info", f64), ("mean_fooled_share", f64),
    ]),
    # Reliability diagram: equal-width bins of the top probability per (dropout_p, condition).
    "calibration": pa.schema([
        ("dropout_p", f64), ("condition", pa.string()), ("bin", i64), ("lower", f64), ("upper", f64),
        ("count", i64), ("mean_top_prob", f64), ("accuracy", f64),
    ]),
    # Per (dropout_p, attack, operating_point minimal | confident): images = the clean-correct
    # (attacked) ones, wrong_before = the others; rates over images; means of distortion and
    # uncertainty over the successes (detection has its own table).
    "attack_summary": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()), ("images", i64), ("wrong_before", i64), ("successes", i64),
        ("success_rate", f64), ("failure_rate", f64), ("mean_l2", f64), ("mean_linf", f64),
        ("mean_perceptual_distance", f64), ("mean_flat_pixels_changed", f64), ("mean_l0", f64),
        ("mean_iterations", f64), ("mean_entropy_clean", f64), ("mean_entropy", f64), ("mean_fooled_share", f64),
    ]),
    # Accuracy (dropout off) under FGSM per (dropout_p, eps) over all images; eps 0 = clean accuracy.
    "robustness": pa.schema([
        ("dropout_p", f64), ("eps", f64), ("accuracy", f64), ("images", i64),
    ]),
    # Success rate per (dropout_p, attack, operating_point, eps, class_name) over the clean-correct
    # images of the class: every budget, and the minimal adversarials of attacks without budgets.
    "success_rates": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()), ("eps", f64),
        ("class_name", pa.string()), ("success_rate", f64), ("images", i64),
    ]),
    # Does uncertainty flag the attack? Per (dropout_p, attack, operating_point, eps, score): negatives
    # the clean-correct clean images (n_clean), positives the successful adversarials (n_adv). attack
    # "noise" rows: positives the noise controls of the successes of attack noise_of. Higher score =
    # flagged (max_prob: the dropout-off max softmax probability, flagged when low). AUROC with a
    # seeded bootstrap 95% interval, AUPR (positives = adversarial), FPR at 95% TPR, mean scores.
    "detection": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()), ("eps", f64),
        ("noise_of", pa.string()), ("score", pa.string()), ("n_clean", i64), ("n_adv", i64), ("auroc", f64),
        ("auroc_low", f64), ("auroc_high", f64), ("aupr", f64), ("fpr_at_95tpr", f64), ("mean_clean", f64),
        ("mean_adv", f64),
    ]),
    # The ROC curve of every detection row (same keys), at most 101 points each.
    "roc": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("operating_point", pa.string()), ("eps", f64),
        ("noise_of", pa.string()), ("score", pa.string()), ("fpr", f64), ("tpr", f64),
    ]),
    # Selective prediction per (dropout_p, condition, score): keep the most certain share (coverage)
    # of the images, risk = error rate among them; aurc = area under the curve; images = N. Clean: all
    # test images; under an attack: the attacked images with their adversarial (wrong before: original).
    "risk_coverage": pa.schema([
        ("dropout_p", f64), ("condition", pa.string()), ("attack", pa.string()), ("operating_point", pa.string()),
        ("eps", f64), ("score", pa.string()), ("images", i64), ("coverage", f64), ("risk", f64), ("aurc", f64),
    ]),
}


def condition_name(attack: str, operating_point: str, eps: float | None = None, noise: bool = False) -> str:
    """The uncertainty table's name for one set of attacked images: "fgsm" (minimal), "fgsm-confident",
    "fgsm-eps0.1" (a budget), and "noise-" before any of them for its noise control."""
    if operating_point == "budget":
        base = f"{attack}-eps{eps:g}"
    else:
        base = attack if operating_point == "minimal" else f"{attack}-{operating_point}"
    return f"noise-{base}" if noise else base


def write_table(rows: dict[str, list[Any]] | pd.DataFrame, name: str, directory: str | Path) -> str:
    """Write table ``name`` (columns as lists, or a DataFrame; cast to its schema) atomically;
    returns its sha256."""
    schema = SCHEMAS[name]
    if isinstance(rows, pd.DataFrame):
        if rows.empty:  # a statistic with no rows (a run without attacks) may not even have its columns
            rows = rows.reindex(columns=schema.names)
        table = pa.Table.from_pandas(rows[schema.names], preserve_index=False)
    else:
        table = pa.table({k: rows[k] for k in schema.names})
    table = table.select(schema.names).cast(schema)
    path = Path(directory) / f"{name}.parquet"
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")  # per process: two shards may assemble at once
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(data: dict[str, Any], path: str | Path) -> None:
    """Write JSON atomically with sorted keys (stable bytes for the same content)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
