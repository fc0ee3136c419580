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

SCHEMA_VERSION = 3

f32, f64, i64 = pa.float32(), pa.float64(), pa.int64()

SCHEMAS: dict[str, pa.Schema] = {
    # One row per test image.
    "images": pa.schema([
        ("image_id", i64), ("label", i64), ("class_name", pa.string()),
        ("sheet", pa.string()), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # One row per (image_id, dropout_p, condition); condition is "clean" or an attack id.
    "uncertainty": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("condition", pa.string()), ("label", i64),
        ("pred", i64), ("confidence", f64), ("true_prob", f64), ("top_prob", f64), ("entropy", f64),
        ("mutual_info", f64), ("variation_ratio", f64), ("fooled_share", f64), ("mean_probs", pa.list_(f32)),
        ("var_probs", pa.list_(f32)), ("pass_true_prob", pa.list_(f32)),
    ]),
    # One row per (image_id, dropout_p, attack, eps); eps is null for the attack's minimal
    # adversarial (FGSM at min_eps, L-BFGS at the smallest c, IAA where it stopped), minimal = true.
    # clean_correct false: wrong before the attack, not attacked, never a success.
    "attacks": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("attack", pa.string()), ("eps", f64), ("minimal", pa.bool_()),
        ("clean_correct", pa.bool_()), ("success", pa.bool_()), ("adv_pred", i64), ("adv_prob", f64), ("l0", i64), ("l2", f64), ("linf", f64),
        ("perceptual_distance", f64), ("flat_pixels_changed", i64), ("iterations", i64), ("min_eps", f64),
        ("c", f64), ("seconds", f64),
    ]),
    # Where each minimal adversarial (picture "adversarial") and its perturbation heatmap (picture
    # "heatmap") sits in the sprite sheets; originals are in the images table.
    "tiles": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("attack", pa.string()), ("picture", pa.string()),
        ("sheet", pa.string()), ("sheet_col", i64), ("sheet_row", i64),
    ]),
    # Activation-map grids of selected images: one tile per (image, model, condition, conv layer).
    "activations": pa.schema([
        ("image_id", i64), ("dropout_p", f64), ("condition", pa.string()), ("layer", pa.string()),
        ("maps", i64), ("tile_width", i64), ("tile_height", i64), ("sheet", pa.string()), ("sheet_col", i64),
        ("sheet_row", i64),
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
    # Per (dropout_p, attack), over the minimal adversarials: images = the clean-correct (attacked)
    # ones, wrong_before = the others; rates over images; means of distortion and uncertainty over
    # the successes; AUROC of clean-correct clean images (negatives) vs successful adversarials.
    "attack_summary": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("images", i64), ("wrong_before", i64), ("successes", i64),
        ("success_rate", f64), ("failure_rate", f64), ("mean_l2", f64), ("mean_linf", f64),
        ("mean_perceptual_distance", f64), ("mean_flat_pixels_changed", f64), ("mean_l0", f64),
        ("mean_iterations", f64), ("mean_entropy_clean", f64), ("mean_entropy", f64), ("mean_fooled_share", f64),
        ("entropy_auroc", f64), ("mutual_info_auroc", f64),
    ]),
    # Accuracy (dropout off) under FGSM per (dropout_p, eps) over all images; eps 0 = clean accuracy.
    "robustness": pa.schema([
        ("dropout_p", f64), ("eps", f64), ("accuracy", f64), ("images", i64),
    ]),
    # Success rate per (dropout_p, attack, eps, class_name) over the clean-correct images of the class;
    # eps null: the attack's minimal adversarials.
    "success_rates": pa.schema([
        ("dropout_p", f64), ("attack", pa.string()), ("eps", f64), ("class_name", pa.string()),
        ("success_rate", f64), ("images", i64),
    ]),
}


def write_table(rows: dict[str, list[Any]] | pd.DataFrame, name: str, directory: str | Path) -> str:
    """Write table ``name`` (columns as lists, or a DataFrame; cast to its schema) atomically;
    returns its sha256."""
    schema = SCHEMAS[name]
    if isinstance(rows, pd.DataFrame):
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
