"""Assemble the final tables, tiles and manifest of a run from its parts (numpy, pandas, PIL only).

Runs when the last part of the last shard is in place (and from ``robustviz build`` when a sharded
run was never assembled). Rows are sorted by (model, condition or attack, budget, image position),
so the tables do not depend on how the images were split into shards.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import activations, parts, tables, tiles
from .metrics import calibration_bins, run_metrics

TILES_DIR = "tiles"


class IncompleteError(RuntimeError):
    """Some parts of the run are missing; the message names the shards still to run."""


def load_plan(results: Path) -> dict[str, Any]:
    path = results / parts.PARTS_DIR / parts.PLAN_FILE
    if not path.is_file():
        raise IncompleteError(f"{results} has no computed parts; run `robustviz compute` first")
    return json.loads(path.read_text())


def missing_parts(results: Path, plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in plan["parts"] if not (results / p["path"]).is_dir()]


def _ordered(frame: pd.DataFrame, plan: dict[str, Any], by: str, position: pd.Series) -> pd.DataFrame:
    order = {name: k for k, name in enumerate(["clean", *plan["attacks"]["enabled"]])}
    keys = pd.DataFrame({"p": frame["dropout_p"], "c": frame[by].map(order), "pos": frame["image_id"].map(position)})
    if "eps" in frame:
        keys["budget"] = frame["eps"].fillna(np.inf)
        sort = ["p", "c", "budget", "pos"]
    else:
        sort = ["p", "c", "pos"]
    return frame.iloc[keys.sort_values(sort, kind="stable").index].reset_index(drop=True)


def _metric_rows(unc: pd.DataFrame, class_names: list[str], bins: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, calibration = [], []
    for (p, condition), rows in unc.groupby(["dropout_p", "condition"], sort=False):
        mean_probs = np.stack(rows["mean_probs"].to_numpy())
        labels = rows["label"].to_numpy()
        for label, name in [(None, None)] + list(enumerate(class_names)):
            sel = slice(None) if label is None else labels == label
            metrics.append({"dropout_p": p, "condition": condition, "class_name": name,
                            **run_metrics(mean_probs[sel], labels[sel], bins)})
        correct = (mean_probs.argmax(1) == labels).astype(np.float64)
        for b in calibration_bins(mean_probs.max(1), correct, bins):
            calibration.append({"dropout_p": p, "condition": condition, **b})
    return pd.DataFrame(metrics), pd.DataFrame(calibration)


def assemble(results: Path) -> dict[str, Any]:
    """Write tables, tiles and manifest.json of ``results`` from its parts; returns the manifest.

    Raises IncompleteError naming the shards that still have to run.
    """
    start = time.perf_counter()
    plan = load_plan(results)
    missing = missing_parts(results, plan)
    if missing:
        shards = sorted({m["shard"] + 1 for m in missing})
        n = plan["shards"]
        raise IncompleteError(
            f"{results} is missing {len(missing)} part(s) of shard(s) {', '.join(f'{k}/{n}' for k in shards)}; "
            f"run `robustviz compute --shard K/{n}` for each of them (same config), then build again")
    manifest_path = results / "manifest.json"
    manifest_path.unlink(missing_ok=True)
    loaded = {(p["p"], p["unit"], p["shard"]): parts.read_part(results / p["path"]) for p in plan["parts"]}
    n_shards = plan["shards"]
    data = [loaded[(None, "data", k)] for k in range(n_shards)]
    originals = np.concatenate([d.arrays["images"] for d in data])
    labels = np.concatenate([d.arrays["labels"] for d in data])
    ids = np.concatenate([d.arrays["image_ids"] for d in data])
    class_names = plan["dataset"]["class_names"]
    position = pd.Series(np.arange(len(ids)), index=ids)
    attacks_enabled = plan["attacks"]["enabled"]
    ps = [m["dropout_p"] for m in plan["models"]]
    timings: dict[str, float] = {}
    for (p, unit, _), part in loaded.items():
        for name, secs in part.meta.get("seconds", {}).items():
            label = name if p is None else f"{name} p={p:g}"
            timings[label] = timings.get(label, 0.0) + secs

    def gather(p: float, unit: str, table: str) -> pd.DataFrame:
        return pd.concat([loaded[(p, unit, k)].tables[table] for k in range(n_shards)], ignore_index=True)

    unc = pd.concat([gather(p, u, "uncertainty") for p in ps for u in ["clean", *attacks_enabled]],
                    ignore_index=True)
    unc = _ordered(unc, plan, "condition", position)
    att = (pd.concat([gather(p, a, "attacks") for p in ps for a in attacks_enabled], ignore_index=True)
           if attacks_enabled else pd.DataFrame({c: [] for c in tables.SCHEMAS["attacks"].names}))
    if attacks_enabled:
        att = _ordered(att, plan, "attack", position)
    metrics, calibration = _metric_rows(unc, class_names, plan["config"]["uncertainty"]["bins"])

    t = time.perf_counter()
    tile_dir = results / TILES_DIR
    if tile_dir.exists():
        for old in tile_dir.iterdir():
            old.unlink(missing_ok=True)
    fmt = tiles.sheet_format(originals.shape[1])
    placed = tiles.write_sheets(originals, tile_dir, "images")
    images = pd.DataFrame({"image_id": ids, "label": labels, "class_name": [class_names[i] for i in labels], **placed})
    tile_rows: list[dict[str, Any]] = []
    for p in ps:
        for a in attacks_enabled:
            adv = np.concatenate([loaded[(p, a, k)].arrays["adversarial"] for k in range(n_shards)])
            for kind, pictures, kind_fmt, palette in (("adversarial", adv, fmt, None),
                                                      ("heatmap", tiles.heatmaps(originals, adv), "png",
                                                       tiles.heat_palette())):
                where = tiles.write_sheets(pictures, tile_dir, f"{kind}-p{p:g}-{a}", kind_fmt, palette)
                tile_rows += [{"image_id": int(i), "dropout_p": p, "attack": a, "kind": kind, "sheet": s,
                               "sheet_col": c, "sheet_row": r}
                              for i, s, c, r in zip(ids, where["sheet"], where["sheet_col"], where["sheet_row"])]
    act_rows = _activation_tiles(plan, loaded, att, labels, ids, tile_dir)
    timings["tiles"] = time.perf_counter() - t

    hashes = {
        "images": tables.write_table(images, "images", results),
        "uncertainty": tables.write_table(unc, "uncertainty", results),
        "metrics": tables.write_table(metrics, "metrics", results),
        "calibration": tables.write_table(calibration, "calibration", results),
        "attacks": tables.write_table(att, "attacks", results),
        "tiles": tables.write_table(pd.DataFrame(tile_rows, columns=tables.SCHEMAS["tiles"].names), "tiles", results),
        "activations": tables.write_table(pd.DataFrame(act_rows, columns=tables.SCHEMAS["activations"].names),
                                          "activations", results),
    }
    models = []
    for m in plan["models"]:
        p = m["dropout_p"]
        plain = np.concatenate([loaded[(p, "clean", k)].arrays["plain_pred"] for k in range(n_shards)])
        clean = unc[(unc["dropout_p"] == p) & (unc["condition"] == "clean")]
        models.append({**m, "accuracy": float(np.mean(plain == labels)),
                       "mc_accuracy": float(np.mean(clean["pred"].to_numpy() == clean["label"].to_numpy()))})
    timings["assemble"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())  # compute time of every part (possibly on several machines) + assembly
    manifest = {
        "schema_version": tables.SCHEMA_VERSION, "run": plan["run"], "dataset": plan["dataset"], "models": models,
        "config": plan["config"], "attacks": plan["attacks"], "device": plan["device"], "versions": plan["versions"],
        "timings": {k: round(v, 3) for k, v in sorted(timings.items())}, "tables": hashes,
        "parts": {"shards": n_shards, "count": len(plan["parts"])},
        "tiles": {"directory": TILES_DIR, "tile_width": int(originals.shape[3]), "tile_height": int(originals.shape[2]),
                  "sheet_cols": tiles.sheet_cols(int(originals.shape[3])), "format": fmt},
    }
    parts.clean_stale(results, {results / p["path"] for p in plan["parts"]})
    tables.write_json(manifest, manifest_path)
    return manifest


def _activation_tiles(plan: dict[str, Any], loaded: dict, att: pd.DataFrame, labels: np.ndarray, ids: np.ndarray,
                      tile_dir: Path) -> list[dict[str, Any]]:
    """Select the images to map over the whole test set, then draw their grids from the parts."""
    cfg = plan["config"]["activations"]
    conditions = ["clean", *plan["attacks"]["enabled"]]
    rows: list[dict[str, Any]] = []
    n_shards = plan["shards"]
    for m in plan["models"]:
        p = m["dropout_p"]
        fg = att[(att["dropout_p"] == p) & (att["attack"] == "fgsm") & att["minimal"]]
        if len(fg):
            min_eps = fg.set_index("image_id")["min_eps"].reindex(ids).to_numpy(dtype=np.float64)
            per_class = cfg["per_class"]
        else:
            min_eps, per_class = np.full(len(ids), np.nan), 0
        chosen = ids[activations.select_images(labels, ids, min_eps, per_class, tuple(cfg["image_ids"]))]
        if len(chosen) == 0:
            continue
        maps: dict[str, dict[str, dict[int, np.ndarray]]] = {}
        for c in conditions:
            maps[c] = {}
            for k in range(n_shards):
                part = loaded[(p, f"activations-{c}", k)]
                part_ids = part.arrays["image_ids"].tolist()
                for name, values in part.arrays.items():
                    if name.startswith("layer-"):
                        layer = maps[c].setdefault(name[len("layer-"):], {})
                        for j, image_id in enumerate(part_ids):
                            layer[int(image_id)] = values[j]
        layers = list(maps["clean"])
        for layer in layers:
            peak = {int(i): max(float(np.clip(maps[c][layer][int(i)].astype(np.float32), 0, None).max())
                                for c in conditions) for i in chosen}
            grids, keys = [], []
            for c in conditions:
                for image_id in chosen:
                    grids.append(activations.grid(maps[c][layer][int(image_id)], peak[int(image_id)]))
                    keys.append((int(image_id), c))
            stack = np.stack(grids)
            where = tiles.write_sheets(stack, tile_dir, f"activations-p{p:g}-{layer}", "png")
            n_maps = int(maps["clean"][layer][int(chosen[0])].shape[0])
            for (image_id, c), sheet, col, row in zip(keys, where["sheet"], where["sheet_col"], where["sheet_row"]):
                rows.append({"image_id": image_id, "dropout_p": p, "condition": c, "layer": layer, "maps": n_maps,
                             "tile_width": int(stack.shape[3]), "tile_height": int(stack.shape[2]), "sheet": sheet,
                             "sheet_col": col, "sheet_row": row})
    return rows
