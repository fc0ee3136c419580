"""The one orchestration of the batch stage: train the models, then compute every table and tile.

``results/<run>/`` holds ``models/`` (checkpoints), the Parquet tables, ``tiles/`` and
``manifest.json``. The manifest is written last and removed first, so a directory without one is
never taken for a finished result.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import activations, attacks, datasets, tables, tiles
from .config import RunConfig, to_plain
from .models import CheckpointError, Classifier, file_sha256, load_checkpoint, save_checkpoint
from .train import accuracy, train_model
from .uncertainty import calibration_bins, image_measures, mc_probs, run_metrics

MODELS_DIR = "models"
TILES_DIR = "tiles"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    return torch.device(name)


def checkpoint_path(cfg: RunConfig, p: float) -> Path:
    return cfg.results_dir / MODELS_DIR / f"p{p:g}.pt"


@dataclass
class StageSummary:
    """What a stage did, for the one-line summary the CLI prints."""

    stage: str
    images: int
    accuracies: dict[float, float]
    seconds: float
    path: Path
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        acc = ", ".join(f"p={p:g} {a:.1%}" for p, a in self.accuracies.items())
        extra = "".join(f"; {n}" for n in self.notes)
        return f"{self.stage}: {self.images} images, accuracy {acc}, {self.seconds:.1f} s{extra} -> {self.path}"


def train_all(cfg: RunConfig, progress: bool = True) -> StageSummary:
    """Train one model per dropout rate and save each checkpoint under ``results/<run>/models/``."""
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    train, test = datasets.load(cfg.data)
    accuracies, timings = {}, {}
    for i, p in enumerate(cfg.model.dropout):
        result = train_model(train, test, p, cfg.model, cfg.train, cfg.seed + i, device, progress)
        result.model.meta["train_seconds"] = round(result.seconds, 3)
        save_checkpoint(result.model.cpu(), checkpoint_path(cfg, p))
        accuracies[p], timings[p] = result.accuracy, result.seconds
    return StageSummary("train", len(train), accuracies, time.perf_counter() - start,
                        cfg.results_dir / MODELS_DIR)


def load_models(cfg: RunConfig, test: datasets.Dataset) -> dict[float, Classifier]:
    """The trained model of every dropout rate, checked against the test data it will see."""
    models = {}
    for p in cfg.model.dropout:
        path = checkpoint_path(cfg, p)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint for dropout p={p:g} at {path}; run `robustviz train` "
                                  f"with the same config first (or `robustviz demo` for everything)")
        model = load_checkpoint(path)
        meta = model.meta
        if tuple(meta["class_names"]) != test.class_names:
            raise CheckpointError(f"checkpoint {path} was trained on classes {meta['class_names']} but the data "
                                  f"has {list(test.class_names)}; retrain with `robustviz train`")
        if tuple(meta["image_shape"]) != test.image_shape:
            raise CheckpointError(f"checkpoint {path} expects images of shape {meta['image_shape']} but the data "
                                  f"has {list(test.image_shape)}; retrain with `robustviz train`")
        if abs(float(meta["dropout"]) - p) > 1e-12:
            raise CheckpointError(f"checkpoint {path} has dropout {meta['dropout']}, not {p}; retrain")
        models[p] = model
    return models


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("robustviz", "torch", "torchvision", "numpy", "pandas", "pyarrow", "pillow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def uncertainty_rows(model: Classifier, data: datasets.Dataset, images: torch.Tensor, p: float,
                     condition: str, cfg: RunConfig, device: torch.device, progress: bool) -> dict[str, list]:
    """MC-dropout measures of ``images`` (float, same order as ``data``) as uncertainty-table columns."""
    rows: dict[str, list] = {name: [] for name in tables.SCHEMAS["uncertainty"].names}
    batch = cfg.uncertainty.batch_size
    bar = tqdm(total=len(data), desc=f"mc-dropout p={p:g} {condition}", unit="img", disable=not progress,
               leave=False)
    for start in range(0, len(data), batch):
        ids = data.image_ids[start:start + batch].tolist()
        labels = data.labels[start:start + batch].numpy()
        probs = mc_probs(model, images[start:start + batch].to(device), ids, cfg.uncertainty.passes, cfg.seed)
        measures = image_measures(probs.cpu().numpy(), labels)
        rows["image_id"] += ids
        rows["dropout_p"] += [p] * len(ids)
        rows["condition"] += [condition] * len(ids)
        rows["label"] += labels.tolist()
        for name, values in measures.items():
            rows[name] += list(values)
        bar.update(len(ids))
    bar.close()
    return rows


def metric_rows(unc: dict[str, list], class_names: tuple[str, ...], bins: int) -> tuple[dict, dict]:
    """Metrics (all images and per class) and calibration bins for one (dropout_p, condition)."""
    p, condition = unc["dropout_p"][0], unc["condition"][0]
    mean_probs = np.stack(unc["mean_probs"])
    labels = np.asarray(unc["label"])
    metrics: dict[str, list] = {name: [] for name in tables.SCHEMAS["metrics"].names}
    for label, name in [(None, None)] + list(enumerate(class_names)):
        sel = slice(None) if label is None else labels == label
        values = run_metrics(mean_probs[sel], labels[sel], bins)
        metrics["dropout_p"].append(p)
        metrics["condition"].append(condition)
        metrics["class_name"].append(name)
        for key in ("images", "accuracy", "ece", "nll", "brier"):
            metrics[key].append(values[key])
    correct = (mean_probs.argmax(1) == labels).astype(np.float64)
    calibration: dict[str, list] = {name: [] for name in tables.SCHEMAS["calibration"].names}
    for b in calibration_bins(mean_probs.max(1), correct, bins):
        calibration["dropout_p"].append(p)
        calibration["condition"].append(condition)
        for key, value in b.items():
            calibration[key].append(value)
    return metrics, calibration


def _concat(parts: list[dict[str, list]]) -> dict[str, list]:
    return {k: [v for part in parts for v in part[k]] for k in parts[0]}


def _empty(name: str) -> dict[str, list]:
    return {column: [] for column in tables.SCHEMAS[name].names}



def attack_tiles(test: datasets.Dataset, minimal: dict[str, torch.Tensor], p: float, directory: Path,
                 fmt: str) -> dict[str, list]:
    """Sheets of each attack's minimal adversarials and their heatmaps; rows of the tiles table."""
    rows = _empty("tiles")
    originals = test.images.numpy()
    for attack, adv in minimal.items():
        adv8 = tiles.to_uint8(adv.numpy())
        for kind, pictures, kind_fmt, palette in (("adversarial", adv8, fmt, None),
                                                  ("heatmap", tiles.heatmaps(originals, adv8), "png",
                                                   tiles.heat_palette())):
            placed = tiles.write_sheets(pictures, directory, f"{kind}-p{p:g}-{attack}", kind_fmt, palette)
            rows["image_id"] += test.image_ids.tolist()
            rows["dropout_p"] += [p] * len(test)
            rows["attack"] += [attack] * len(test)
            rows["kind"] += [kind] * len(test)
            for key in ("sheet", "sheet_col", "sheet_row"):
                rows[key] += placed[key]
    return rows


def activation_tiles(model: Classifier, test: datasets.Dataset, floats: torch.Tensor, attacked, p: float,  # noqa: ANN001
                     cfg: RunConfig, device: torch.device, directory: Path) -> dict[str, list]:
    """Activation-map grids of the selected images under every condition; rows of the activations table."""
    rows = _empty("activations")
    positions = activations.select_images(test.labels.numpy(), test.image_ids.numpy(), attacked.min_eps.numpy(),
                                          cfg.activations.per_class, cfg.activations.image_ids)
    if not positions:
        return rows
    sel = torch.tensor(positions)
    conditions = {"clean": floats[sel], **{a: adv[sel] for a, adv in attacked.minimal.items()}}
    maps = {c: activations.feature_maps(model, x.to(device)) for c, x in conditions.items()}
    ids = test.image_ids[sel].tolist()
    for layer in model.conv_layers():
        peak = torch.stack([maps[c][layer].clamp_min(0).flatten(1).amax(1) for c in conditions]).amax(0)
        grids, keys = [], []
        for c in conditions:
            for k, image_id in enumerate(ids):
                grids.append(activations.grid(maps[c][layer][k], float(peak[k]), cfg.activations.max_maps))
                keys.append((image_id, c))
        stack = np.stack(grids)
        placed = tiles.write_sheets(stack, directory, f"activations-p{p:g}-{layer}", "png")
        n_maps = min(maps["clean"][layer].shape[1], cfg.activations.max_maps)
        for (image_id, c), sheet, col, row in zip(keys, placed["sheet"], placed["sheet_col"], placed["sheet_row"]):
            rows["image_id"].append(image_id)
            rows["dropout_p"].append(p)
            rows["condition"].append(c)
            rows["layer"].append(layer)
            rows["maps"].append(n_maps)
            rows["tile_width"].append(stack.shape[3])
            rows["tile_height"].append(stack.shape[2])
            rows["sheet"].append(sheet)
            rows["sheet_col"].append(col)
            rows["sheet_row"].append(row)
    return rows


def compute(cfg: RunConfig, progress: bool = True) -> StageSummary:
    """Compute every table and tile of ``results/<run>/`` from the trained checkpoints."""
    start = time.perf_counter()
    out = cfg.results_dir
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest_path.unlink(missing_ok=True)  # until rewritten, this run is not a finished result
    device = resolve_device(cfg.device)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    train, test = datasets.load(cfg.data)
    models = load_models(cfg, test)
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    sheets = tiles.write_sheets(test.images.numpy(), out / TILES_DIR, "images")
    images_table = {"image_id": test.image_ids.tolist(), "label": test.labels.tolist(),
                    "class_name": [test.class_names[i] for i in test.labels.tolist()], **sheets}
    timings["tiles"] = time.perf_counter() - t

    floats = test.images.float().div_(255.0)
    attack_cfg = attacks.resolve(cfg.attacks, test.image_shape[0])
    colour_fmt = tiles.sheet_format(test.image_shape[0])
    parts: dict[str, list[dict[str, list]]] = {name: [] for name in ("uncertainty", "metrics", "calibration",
                                                                      "attacks", "tiles", "activations")}
    for p, model in models.items():
        t = time.perf_counter()
        model.to(device)
        conditions = {"clean": floats}
        if attack_cfg.enabled:
            out_attacks = attacks.run_attacks(model, floats, test.labels, test.image_ids.tolist(), p, attack_cfg,
                                              device, progress)
            parts["attacks"].append(out_attacks.rows)
            for name, secs in out_attacks.seconds.items():
                timings[f"{name} p={p:g}"] = secs
            conditions.update(out_attacks.minimal)
        timings[f"attacks p={p:g}"] = time.perf_counter() - t
        t = time.perf_counter()
        for condition, images in conditions.items():
            rows = uncertainty_rows(model, test, images, p, condition, cfg, device, progress)
            metrics, calibration = metric_rows(rows, test.class_names, cfg.uncertainty.bins)
            parts["uncertainty"].append(rows)
            parts["metrics"].append(metrics)
            parts["calibration"].append(calibration)
        timings[f"mc_dropout p={p:g}"] = time.perf_counter() - t
        t = time.perf_counter()
        if attack_cfg.enabled:
            parts["tiles"].append(attack_tiles(test, out_attacks.minimal, p, out / TILES_DIR, colour_fmt))
            parts["activations"].append(activation_tiles(model, test, floats, out_attacks, p, cfg, device,
                                                         out / TILES_DIR))
        model.cpu()
        timings[f"tiles p={p:g}"] = time.perf_counter() - t

    hashes = {"images": tables.write_table(images_table, "images", out)}
    for name, chunks in parts.items():
        hashes[name] = tables.write_table(_concat(chunks) if chunks else _empty(name), name, out)
    clean_rows = [part for part in parts["uncertainty"] if part["condition"][0] == "clean"]
    mc_acc = {p: float(np.mean(np.asarray(part["pred"]) == np.asarray(part["label"])))
              for p, part in zip(models, clean_rows)}
    clean = {p: accuracy(m.to(device), test, device) for p, m in models.items()}
    timings["total"] = time.perf_counter() - start
    manifest = {
        "schema_version": tables.SCHEMA_VERSION,
        "run": cfg.name,
        "dataset": {"name": test.name, "split": test.split, "class_names": list(test.class_names),
                    "image_shape": list(test.image_shape), "test_images": len(test),
                    "train_images": len(train), "sha256": test.fingerprint()},
        "models": [{"dropout_p": p, "architecture": m.meta["architecture"],
                    "checkpoint": f"{MODELS_DIR}/{checkpoint_path(cfg, p).name}",
                    "checkpoint_sha256": file_sha256(checkpoint_path(cfg, p)),
                    "accuracy": clean[p], "mc_accuracy": mc_acc[p],
                    "train_seconds": m.meta.get("train_seconds"), "epochs": m.meta.get("epochs")}
                   for p, m in models.items()],
        "config": cfg.to_dict(),
        "attacks": {"enabled": list(attack_cfg.enabled), "resolved": to_plain(attack_cfg)},
        "device": str(device),
        "versions": versions(),
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "tables": hashes,
        "tiles": {"directory": TILES_DIR, "tile_width": test.image_shape[2], "tile_height": test.image_shape[1],
                  "sheet_cols": tiles.sheet_cols(test.image_shape[2]),
                  "format": tiles.sheet_format(test.image_shape[0])},
    }
    tables.write_json(manifest, manifest_path)
    return StageSummary("compute", len(test), clean, time.perf_counter() - start, out)
