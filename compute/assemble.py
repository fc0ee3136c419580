"""Assemble the final tables, tiles and manifest of a run from its parts (numpy, pandas, PIL only).

Runs when the last part of the last shard is in place (and from ``robustviz build`` when a sharded
run was never assembled). Rows are sorted by (model, condition or attack, budget, image position),
so the tables do not depend on how the images were split into shards. The config is the typed
RunConfig rebuilt from the plan (``config.from_manifest``).
"""
from __future__ import annotations

import functools
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import activations, embedding, parts, summaries, tables, tiles, workers
from .attacks import ATTACKS
from .config import RunConfig, from_manifest
from .contract import CLEAN, OPERATING_POINTS, REFERENCE, SCHEMA_VERSION, SCHEMAS, TILED_POINTS, condition_name
from .detection import detection, ood_detection, selective, transfer_detection
from .equal_cost import methods_table
from .findings import findings
from .metrics import calibration_bins, run_metrics
from .parts import Part, Plan, Stored
from .survival import TRANSFER, TRANSFORMS
from .provenance import provenance

TILES_DIR = "tiles"


class IncompleteError(RuntimeError):
    """Some parts of the run are missing; the message names the shards still to run."""


def load_plan(results: Path) -> Plan:
    """The run's plan; raises IncompleteError when compute never ran or some part is missing."""
    plan = Plan.read(results)
    if plan is None:
        raise IncompleteError(f"{results} has no computed parts; run `robustviz compute` first")
    missing = [p for p in plan.parts if not p.done(results)]
    if missing:
        shards = sorted({m.shard + 1 for m in missing})
        n = plan.shards
        raise IncompleteError(
            f"{results} is missing {len(missing)} part(s) of shard(s) {', '.join(f'{k}/{n}' for k in shards)}; "
            f"run `robustviz compute --shard K/{n}` for each of them (same config), then build again")
    return plan


@dataclass(frozen=True)
class Loaded:
    """Every part of a complete plan, read."""

    plan: Plan
    stored: dict[Part, Stored]

    @functools.cached_property
    def cfg(self) -> RunConfig:
        """The run's typed config, its attacks resolved for the data (parsed once)."""
        return from_manifest(self.plan.run)

    @property
    def models(self) -> list[str]:
        """The model keys, in the order they were planned."""
        return [m["key"] for m in self.plan.run["models"]]

    def shards(self, unit: str, model: str | None, condition: str | None) -> list[Stored]:
        return [self.stored[part] for part in self.plan.shard_parts(unit, model, condition)]

    def array(self, unit: str, model: str | None, condition: str | None, name: str) -> np.ndarray:
        """One array of a unit, concatenated over the shards."""
        return np.concatenate([s.arrays[name] for s in self.shards(unit, model, condition)])

    def table(self, unit: str, model: str | None, condition: str | None, name: str) -> pd.DataFrame:
        return pd.concat([s.tables[name] for s in self.shards(unit, model, condition)], ignore_index=True)


POINT_ORDER = {point: k for k, point in enumerate(OPERATING_POINTS)}  # minimal, confident, budget


def _ordered(frame: pd.DataFrame, models: list[str], attack_names: list[str], position: pd.Series,
             **orders: list[str]) -> pd.DataFrame:
    """Rows sorted by model (as planned), attack (clean first, then as configured), noise control last,
    operating point (minimal, confident, budgets by eps), then each column of ``orders`` in its listed
    order (the survival table's transform and target), and image position: an order no sharding changes."""
    rank = lambda values: {v: k for k, v in enumerate(values)}  # noqa: E731
    keys = pd.DataFrame({"m": frame["model"].map(rank(models)), "a": frame["attack"].map(rank(attack_names)).fillna(-1),
                         "noise": frame["noise"] if "noise" in frame else False,
                         "point": frame["operating_point"].map(POINT_ORDER).fillna(-1),
                         "eps": frame["eps"].fillna(-1.0) if "eps" in frame else -1.0,
                         **{column: frame[column].map(rank(values)) for column, values in orders.items()},
                         "pos": frame["image_id"].map(position)})
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return frame.iloc[order].reset_index(drop=True)


def gather_rows(loaded: Loaded, attack_names: list[str], position: pd.Series) -> dict[str, pd.DataFrame]:
    """The uncertainty, attacks and survival tables of every model, in a shard-independent order."""
    models = loaded.models
    unc = pd.concat([loaded.table("clean", m, CLEAN, "uncertainty") for m in models] +
                    [loaded.table("attack", m, a, "uncertainty") for m in models for a in attack_names],
                    ignore_index=True)
    if attack_names:
        att = pd.concat([loaded.table("attack", m, a, "attacks") for m in models for a in attack_names],
                        ignore_index=True)
        att = _ordered(att, models, attack_names, position)
        surv = pd.concat([loaded.table("survival", m, a, "survival") for m in models for a in attack_names],
                         ignore_index=True)
        surv = _ordered(surv, models, attack_names, position, transform=[*TRANSFORMS, TRANSFER], target=models)
    else:
        att = pd.DataFrame({c: [] for c in SCHEMAS["attacks"].names})
        surv = pd.DataFrame({c: [] for c in SCHEMAS["survival"].names})
    # MC dropout at T = M (beside ensembles) and the ensembles' transfer from one member: parts written
    # before these tables existed have none, and a run without ensembles has no rows.
    equal = [s.tables["equal_passes"] for part, s in loaded.stored.items()
             if part.unit in ("clean", "attack") and "equal_passes" in s.tables]
    equal_frame = pd.concat(equal, ignore_index=True) if equal else pd.DataFrame(columns=SCHEMAS["equal_passes"].names)
    moved = [s.tables["transfer"] for part, s in loaded.stored.items() if part.unit == "attack" and "transfer" in s.tables]
    transfer = pd.concat(moved, ignore_index=True) if moved else pd.DataFrame(columns=SCHEMAS["transfer"].names)
    if len(transfer):
        transfer = _ordered(transfer, models, attack_names, position)
    # The OOD images (none for a run without an OOD set), by model as planned, then position in the set.
    found = [loaded.stored[part].tables["ood"] for part in loaded.plan.parts if part.unit == "ood"]
    ood = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=SCHEMAS["ood"].names)
    if len(ood):
        ood = ood.assign(_m=ood["model"].map({m: k for k, m in enumerate(models)})).sort_values(
            ["_m", "image_id"], kind="stable").drop(columns="_m").reset_index(drop=True)
    return {"uncertainty": _ordered(unc, models, attack_names, position), "attacks": att, "survival": surv,
            "equal_passes": _ordered(equal_frame, models, attack_names, position) if len(equal_frame) else equal_frame,
            "transfer": transfer, "ood": ood}


def with_attributes(frame: pd.DataFrame, dropout: dict[str, float | None]) -> pd.DataFrame:
    """``frame`` (rows per model key) with each model's ``dropout_p`` beside its key."""
    return frame.assign(dropout_p=frame["model"].map(dropout)) if "model" in frame else frame


def metric_tables(unc: pd.DataFrame, class_names: list[str], bins: int) -> dict[str, pd.DataFrame]:
    """Run-level figures per (model, condition), overall and per class, and reliability bins."""
    metrics, calibration = [], []
    for (model, condition), rows in unc.groupby(["model", "condition"], sort=False):
        mean_probs = np.stack(rows["mean_probs"].to_numpy())
        labels = rows["label"].to_numpy()
        for label, name in [(None, None)] + list(enumerate(class_names)):
            sel = np.ones(len(labels), dtype=bool) if label is None else labels == label
            means = {f"mean_{c}": float(rows[c].to_numpy()[sel].mean()) if sel.any() else float("nan")
                     for c in ("entropy", "mutual_info", "fooled_share")}
            metrics.append({"model": model, "condition": condition, "class_name": name,
                            **run_metrics(mean_probs[sel], labels[sel], bins), **means})
        correct = (mean_probs.argmax(1) == labels).astype(np.float64)
        for b in calibration_bins(mean_probs.max(1), correct, bins):
            calibration.append({"model": model, "condition": condition, **b})
    return {"metrics": pd.DataFrame(metrics), "calibration": pd.DataFrame(calibration)}


def model_summaries(loaded: Loaded, unc: pd.DataFrame) -> list[dict[str, Any]]:
    """The manifest's models, with clean accuracy dropout off (``plain_pred``) and of the MC mean."""
    models = []
    for m in loaded.plan.run["models"]:
        clean = unc[(unc["model"] == m["key"]) & (unc["condition"] == CLEAN)]
        models.append({**m, "accuracy": float(np.mean(clean["plain_pred"].to_numpy() == clean["label"].to_numpy())),
                       "mc_accuracy": float(np.mean(clean["pred"].to_numpy() == clean["label"].to_numpy()))})
    return models


def write_ood_tiles(tile_dir: Path, loaded: Loaded, ood: pd.DataFrame, fmt: str) -> pd.DataFrame:
    """Sprite sheets ``ood-NNN`` of the OOD images, in the order of their ids; returns the ood table
    with each row's tile (sheet, sheet_col, sheet_row). Every model scored the same images: the first
    model's parts hold them."""
    if ood.empty:
        return ood.assign(sheet=pd.Series(dtype=str), sheet_col=pd.Series(dtype="int64"),
                          sheet_row=pd.Series(dtype="int64"))
    stored = [loaded.stored[p] for p in loaded.plan.parts if p.unit == "ood" and p.model == loaded.models[0]]
    ids = np.concatenate([s.arrays["image_ids"] for s in stored])
    order = np.argsort(ids, kind="stable")
    placed = pd.DataFrame(tiles.write_sheets(np.concatenate([s.arrays["images"] for s in stored])[order], tile_dir,
                                             "ood", fmt), index=ids[order])
    return ood.drop(columns=["sheet", "sheet_col", "sheet_row"], errors="ignore").join(placed, on="image_id")


def write_tiles(tile_dir: Path, loaded: Loaded, originals: np.ndarray, ids: np.ndarray, labels: np.ndarray,
                att: pd.DataFrame, class_names: list[str]) -> dict[str, pd.DataFrame]:
    """Sprite sheets of the originals, every minimal and confident adversarial, and the activation grids;
    returns the images, tiles and activations tables that say where each tile sits."""
    if tile_dir.exists():
        for old in tile_dir.iterdir():
            old.unlink(missing_ok=True)
    run = loaded.plan.run
    fmt = tiles.sheet_format(originals.shape[1])
    placed = tiles.write_sheets(originals, tile_dir, "images")
    images = pd.DataFrame({"image_id": ids, "label": labels, "class_name": [class_names[i] for i in labels], **placed})
    tile_rows: list[dict[str, Any]] = []
    position = pd.Series(np.arange(len(ids)), index=ids)
    for key in loaded.models:
        for a in run["attacks"]["enabled"]:
            stored = loaded.shards("attack", key, a)
            for point in TILED_POINTS:
                # Sheets hold every image in the images table's order (one layout for all kinds); an
                # image without this picture (not attacked: an attack on a subset) gets a blank tile.
                # Perturbations and noise controls are not pictured: the site draws the perturbation
                # from original and adversarial, and the tables hold the noise controls' figures.
                name = condition_name(a, point)
                where_adv = position[_ids_of(stored, name)].to_numpy()
                adv = np.zeros_like(originals)
                adv[where_adv] = np.concatenate([s.arrays[f"images-{name}"] for s in stored])
                if len(where_adv) == 0:
                    continue
                placed_at = tiles.write_sheets(adv, tile_dir, f"adversarial-{key}-{name}", fmt)
                tile_rows += [{"image_id": int(ids[i]), "model": key, "attack": a, "operating_point": point,
                               "picture": "adversarial", "sheet": placed_at["sheet"][i],
                               "sheet_col": placed_at["sheet_col"][i], "sheet_row": placed_at["sheet_row"][i]}
                              for i in np.sort(where_adv)]
    act_rows = activation_tiles(loaded, att, labels, ids, tile_dir)
    return {"images": images, "tiles": pd.DataFrame(tile_rows, columns=SCHEMAS["tiles"].names),
            "activations": pd.DataFrame(act_rows, columns=SCHEMAS["activations"].names)}


def _ids_of(stored: list[Stored], name: str) -> np.ndarray:
    """Image ids of the stored images of condition ``name``, over the shards, in order."""
    return np.concatenate([s.arrays["image_ids"][s.arrays[f"positions-{name}"]] for s in stored])


def activation_tiles(loaded: Loaded, att: pd.DataFrame, labels: np.ndarray, ids: np.ndarray,
                     tile_dir: Path) -> list[dict[str, Any]]:
    """Select the images to map over the whole test set, then draw their grids from the parts."""
    cfg = loaded.cfg
    ranked_by = cfg.attacks.ranked_by
    column = ATTACKS[ranked_by].card.ranking_column if ranked_by else ""
    conditions = [CLEAN, *cfg.attacks.enabled]
    rows: list[dict[str, Any]] = []
    for key in loaded.models:
        ranking = att[(att["model"] == key) & (att["attack"] == ranked_by)] if ranked_by else None
        chosen = ids[activations.select_images(ranking, column, labels, ids, cfg.activations)]
        if len(chosen) == 0:
            continue
        maps = {c: _feature_maps(loaded.shards("activations", key, c)) for c in conditions}
        for layer in maps[CLEAN]:
            peak = {int(i): max(float(np.clip(maps[c][layer][int(i)].astype(np.float32), 0, None).max())
                                for c in conditions if int(i) in maps[c].get(layer, {})) for i in chosen}
            grids, keys = [], []
            for c in conditions:
                for image_id in chosen:
                    if int(image_id) not in maps[c].get(layer, {}):  # not attacked (an attack on a subset)
                        continue
                    grids.append(activations.grid(maps[c][layer][int(image_id)], peak[int(image_id)]))
                    keys.append((int(image_id), c))
            stack = np.stack(grids)
            where = tiles.write_sheets(stack, tile_dir, f"activations-{key}-{layer}", "png")
            n_maps = int(maps[CLEAN][layer][int(chosen[0])].shape[0])
            for (image_id, c), sheet, col, row in zip(keys, where["sheet"], where["sheet_col"], where["sheet_row"]):
                rows.append({"image_id": image_id, "model": key, "condition": c, "layer": layer, "maps": n_maps,
                             "tile_width": int(stack.shape[3]), "tile_height": int(stack.shape[2]), "sheet": sheet,
                             "sheet_col": col, "sheet_row": row})
    return rows


def _feature_maps(shards: list[Stored]) -> dict[str, dict[int, np.ndarray]]:
    """layer -> image id -> maps, from the activation parts of every shard."""
    out: dict[str, dict[int, np.ndarray]] = {}
    for part in shards:
        part_ids = part.arrays["image_ids"].tolist()
        for name, values in part.arrays.items():
            if name.startswith("layer-"):
                layer = out.setdefault(name[len("layer-"):], {})
                for j, image_id in enumerate(part_ids):
                    layer[int(image_id)] = values[j]
    return out


def embedding_tables(loaded: Loaded, att: pd.DataFrame, labels: pd.Series) -> dict[str, pd.DataFrame]:
    """Per model, the feature maps of the clean images and each attack's minimal and confident
    adversarials, how faithful each map is (``map_faithfulness``: per adversarial set, the share whose
    10 nearest clean images are mostly of the adversarial class, in the map and in feature space; PCA's
    explained variance), and each clean image's nearest clean neighbours in feature space.
    ``labels``: image_id -> label."""
    run_cfg = loaded.cfg
    cfg = run_cfg.embedding
    rows: dict[str, list] = {name: [] for name in SCHEMAS["embedding"].names if name != "dropout_p"}
    near: dict[str, list] = {name: [] for name in SCHEMAS["neighbours"].names if name != "dropout_p"}
    faithful = []
    for key in loaded.models:
        found = {}
        sets = [(CLEAN, CLEAN)] + [(a, condition_name(a, point)) for a in run_cfg.attacks.enabled
                                   for point in TILED_POINTS]
        for unit, c in sets:
            stored = loaded.shards("features", key, unit)
            found[c] = (np.concatenate([s.arrays[f"image_ids-{c}"] for s in stored]),
                        np.concatenate([s.arrays[f"features-{c}"] for s in stored]).astype(np.float32))
        reference = np.concatenate([s.arrays[f"features-{REFERENCE}"]
                                    for s in loaded.shards("features", key, REFERENCE)]).astype(np.float32)
        maps = embedding.project(reference, {c: x for c, (_, x) in found.items()}, cfg.pca_components,
                                 cfg.perplexity, run_cfg.seed, cfg.threads)
        clean_ids, clean = found.pop(CLEAN)
        for method in embedding.METHODS:
            for c, (set_ids, xy) in [(CLEAN, (clean_ids, maps.placed[method][CLEAN])),
                                     *[(c, (found[c][0], maps.placed[method][c])) for c in found]]:
                rows["image_id"] += set_ids.tolist()
                rows["model"] += [key] * len(set_ids)
                rows["condition"] += [c] * len(set_ids)
                rows["method"] += [method] * len(set_ids)
                rows["x"] += xy[:, 0].tolist()
                rows["y"] += xy[:, 1].tolist()
        idx, dist = embedding.neighbours(clean, cfg.neighbours)
        k = idx.shape[1]
        near["image_id"] += np.repeat(clean_ids, k).tolist()
        near["model"] += [key] * (len(clean_ids) * k)
        near["rank"] += np.tile(np.arange(1, k + 1), len(clean_ids)).tolist()
        near["neighbour_id"] += clean_ids[idx.reshape(-1)].tolist()
        near["distance"] += dist.reshape(-1).tolist()
        clean_labels = labels.loc[clean_ids].to_numpy()
        for c, (set_ids, x) in found.items():
            attack, point = next((a, p) for a in run_cfg.attacks.enabled for p in TILED_POINTS
                                 if condition_name(a, p) == c)
            hit = att[(att["model"] == key) & (att["attack"] == attack) & (att["operating_point"] == point)
                      & att["success"]].set_index("image_id")["adv_pred"]
            fooled = np.isin(set_ids, hit.index)  # only successful adversarials have an adversarial class
            target = hit.reindex(set_ids[fooled]).to_numpy()
            in_features = embedding.faithfulness(clean, clean_ids, x[fooled], set_ids[fooled], target, clean_labels)
            for method in embedding.METHODS:
                on_map = embedding.faithfulness(maps.placed[method][CLEAN], clean_ids, maps.placed[method][c][fooled],
                                                set_ids[fooled], target, clean_labels)
                faithful.append({"model": key, "method": method, "condition": c, "attack": attack,
                                 "operating_point": point, "n_images": int(fooled.sum()),
                                 "share_features": in_features, "share_map": on_map,
                                 "explained_variance": maps.explained if method == "pca" else float("nan")})
    return {"embedding": pd.DataFrame(rows), "neighbours": pd.DataFrame(near),
            "map_faithfulness": pd.DataFrame(faithful, columns=SCHEMAS["map_faithfulness"].names[:2] +
                                             SCHEMAS["map_faithfulness"].names[3:])}


def _maps_timed(features: Loaded, fooled: pd.DataFrame, labels: pd.Series) -> tuple[dict[str, pd.DataFrame], float]:
    """``embedding_tables`` and its wall-clock seconds."""
    t = time.perf_counter()
    maps = embedding_tables(features, fooled, labels)
    return maps, time.perf_counter() - t


def inference_timings(loaded: Loaded) -> dict[str, dict[str, float]]:
    """Per model, the measured seconds per clean image of its prediction with uncertainty (``inference``;
    MC dropout's at T = M: ``inference_m``), averaged over the shards by their images."""
    out: dict[str, dict[str, float]] = {}
    for model in loaded.models:
        shards = [(s.meta.get("timed", {}), len(s.tables["uncertainty"])) for s in loaded.shards("clean", model, CLEAN)]
        total = sum(n for _, n in shards)
        for name in {k for timed, _ in shards for k in timed}:
            out.setdefault(model, {})[name] = sum(t.get(name, float("nan")) * n for t, n in shards) / max(total, 1)
    return out


def part_timings(loaded: Loaded) -> dict[str, float]:
    """Seconds per stage and model, summed over the shards (possibly run on several machines)."""
    timings: dict[str, float] = {}
    for part, stored in loaded.stored.items():
        for name, secs in stored.meta.get("seconds", {}).items():
            label = name if part.model is None else f"{name} {part.model}"
            timings[label] = timings.get(label, 0.0) + secs
    return timings


def assemble(results: Path, command: Sequence[str] | None = None) -> dict[str, Any]:
    """Write tables, tiles and manifest.json of ``results`` from its parts; returns the manifest.
    ``command``: the command line that computed the run, recorded in the manifest's provenance.

    Raises IncompleteError naming the shards that still have to run.
    """
    start = time.perf_counter()
    plan = load_plan(results)
    manifest_path = results / "manifest.json"
    manifest_path.unlink(missing_ok=True)
    loaded = Loaded(plan, {part: parts.read_part(results / part.path) for part in plan.parts})
    run, cfg = plan.run, loaded.cfg
    class_names, attack_names = run["dataset"]["class_names"], list(cfg.attacks.enabled)
    originals, labels, ids = (loaded.array("data", None, None, name) for name in ("images", "labels", "image_ids"))

    found = gather_rows(loaded, attack_names, pd.Series(np.arange(len(ids)), index=ids))
    unc, att = found["uncertainty"], found["attacks"]
    models = model_summaries(loaded, unc)
    # The feature maps (openTSNE, numpy and scikit-learn) run in a process of their own beside the
    # statistics below (numpy and pandas, mostly one core): with two cores or more the two overlap
    # instead of queueing. A thread would not: the two hold the GIL too often. The maps' OpenMP threads
    # wait passively, or they spin on the statistics' core (measured, docs/benchmarks.md).
    features = Loaded(plan, {part: stored for part, stored in loaded.stored.items() if part.unit == "features"})
    fooled = att.loc[att["success"], ["model", "attack", "operating_point", "image_id", "adv_pred", "success"]]
    label_of = pd.Series(labels, index=ids)
    beside = workers.cores() > 1  # on one core the maps run here, after the statistics
    with workers.fresh_processes(OMP_WAIT_POLICY="PASSIVE") as context, \
            ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        mapping = pool.submit(_maps_timed, features, fooled, label_of) if beside else None
        t = time.perf_counter()
        placed = write_tiles(results / TILES_DIR, loaded, originals, ids, labels, att, class_names)
        found["ood"] = write_ood_tiles(results / TILES_DIR, loaded, found["ood"], fmt=tiles.sheet_format(originals.shape[1]))
        tiles_seconds = time.perf_counter() - t
        detected = detection(unc, att, loaded.models, cfg.detection.resamples, cfg.seed, run["attacks"]["cards"])
        moved = transfer_detection(found["transfer"], unc, att, cfg.detection.resamples, cfg.seed)
        flagged, flagged_roc = ood_detection(unc, found["ood"], loaded.models, cfg.detection.resamples, cfg.seed)
        detected["detection"] = pd.concat([f for f in (detected["detection"], moved, flagged) if len(f)]
                                          or [detected["detection"]], ignore_index=True)
        if len(flagged_roc):
            detected["roc"] = pd.concat([detected["roc"], flagged_roc], ignore_index=True)
        compared = methods_table(unc, found["equal_passes"], att, models, inference_timings(loaded),
                                 run["attacks"]["cards"], cfg.uncertainty.passes, cfg.uncertainty.members,
                                 cfg.model.dropout[0], cfg.uncertainty.bins, cfg.detection.resamples, cfg.seed)
        statistics = {
            **metric_tables(unc, class_names, cfg.uncertainty.bins),
            "attack_summary": summaries.attack_summary(att, unc, attack_names, loaded.models),
            "robustness": summaries.robustness(att, cfg.attacks.ranked_by,
                                               {m["key"]: m["accuracy"] for m in models}, label_of),
            "success_rates": summaries.success_rates(att, label_of, class_names),
            **detected,
            "risk_coverage": selective(unc, cfg.detection.attacked_share, cfg.seed, cfg.detection.resamples),
            "methods": compared,
            "findings": findings(unc, att, found["survival"], detected["detection"], detected.get("adaptive"),
                                 cfg.detection.resamples, cfg.seed, compared),
        }
        maps, embedding_seconds = mapping.result() if mapping else _maps_timed(features, fooled, label_of)
    frames = {**found, **placed, **maps, **statistics}
    dropout = {m["key"]: m["dropout_p"] for m in models}
    hashes = {name: tables.write_table(with_attributes(frame, dropout), name, results)
              for name, frame in frames.items()}

    timings = part_timings(loaded)
    computed = sum(timings.values())
    timings["tiles"] = tiles_seconds  # parts of assemble, shown on their own
    timings["embedding"] = embedding_seconds
    timings["assemble"] = time.perf_counter() - start
    timings["total"] = computed + timings["assemble"]  # every part (possibly on several machines) + assembly
    manifest = {
        "schema_version": SCHEMA_VERSION, "run": run["run"], "dataset": run["dataset"], "models": models,
        "config": run["config"], "attacks": run["attacks"], "ood": run.get("ood"), "device": run["device"],
        "versions": run["versions"],
        "timings": {k: round(v, 3) for k, v in sorted(timings.items())}, "tables": hashes,
        "parts": {"shards": plan.shards, "count": len(plan.parts)}, "provenance": provenance(command),
        "tiles": {"directory": TILES_DIR, "tile_width": int(originals.shape[3]), "tile_height": int(originals.shape[2]),
                  "sheet_cols": tiles.sheet_cols(int(originals.shape[3])), "format": tiles.sheet_format(originals.shape[1])},
    }
    parts.clean_stale(results, {results / p.path for p in plan.parts})
    tables.write_json(manifest, manifest_path)
    return manifest
