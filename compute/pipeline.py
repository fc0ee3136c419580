"""The one orchestration of the batch stage: train the models, then compute every table and tile.

``results/<run>/`` holds ``models/`` (checkpoints), ``parts/`` (see compute/parts.py), and, once
every part of every shard is there, the Parquet tables, ``tiles/`` and ``manifest.json``. The
manifest is written last and removed first, so a directory without one is never taken for a
finished result. A re-run reuses every part whose inputs did not change.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import activations, assemble, attacks, datasets, embedding, parts, tables
from .config import AttacksConfig, ConfigError, RunConfig, to_plain
from .metrics import image_measures
from .models import CheckpointError, Classifier, file_sha256, load_checkpoint, save_checkpoint
from .parts import Part, Plan
from .train import train_model
from .uncertainty import mc_probs

MODELS_DIR = "models"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device auto or cpu")
    return torch.device(name)


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` or fail with a ConfigError saying why and what to do."""
    for parent in [directory, *directory.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"output path {parent} is a file, not a folder; choose another --out")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to output folder {directory} ({exc.strerror or exc}); choose a writable "
                          f"--out") from exc


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
    reused: int = 0  # parts found up to date
    computed: int = 0  # parts computed by this call

    def line(self) -> str:
        acc = ", ".join(f"p={p:g} {a:.1%}" for p, a in self.accuracies.items())
        extra = "".join(f"; {n}" for n in self.notes)
        accuracy = f", accuracy {acc}" if acc else ""
        return f"{self.stage}: {self.images} images{accuracy}, {self.seconds:.1f} s{extra} -> {self.path}"


def train_all(cfg: RunConfig, progress: bool = True) -> StageSummary:
    """Train one model per dropout rate and save each checkpoint under ``results/<run>/models/``."""
    start = time.perf_counter()
    ensure_writable(cfg.results_dir / MODELS_DIR)
    device = resolve_device(cfg.device)
    train, test = datasets.load(cfg.data)
    accuracies = {}
    for i, p in enumerate(cfg.model.dropout):
        result = train_model(train, test, p, cfg.model, cfg.train, cfg.seed + i, device, progress)
        result.model.meta["train_seconds"] = round(result.seconds, 3)
        save_checkpoint(result.model.cpu(), checkpoint_path(cfg, p))
        accuracies[p] = result.accuracy
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
        wanted = cfg.model.architecture
        if wanted != "auto" and meta["architecture"] != wanted:
            raise CheckpointError(f"checkpoint {path} is a {meta['architecture']} but the config asks for {wanted}; "
                                  f"retrain with `robustviz train` or set model.architecture = \"{meta['architecture']}\"")
        if abs(float(meta["dropout"]) - p) > 1e-12:
            raise CheckpointError(f"checkpoint {path} has dropout {meta['dropout']}, not {p}; retrain")
        models[p] = model
    return models


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("robustviz", "torch", "torchvision", "numpy", "pandas", "pyarrow", "pillow", "scikit-learn",
                 "openTSNE"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def uncertainty_rows(model: Classifier, sets: list[attacks.Condition], image_ids: list[int], labels: torch.Tensor,
                     p: float, job: Job) -> dict[str, list]:
    """MC-dropout measures of every image set (clean or a condition of an attack; ``rows`` ascending
    positions among ``image_ids``) as uncertainty-table columns, with the prediction and top
    probability of the model with dropout off (``plain_pred``, ``max_prob``). In each batch of images
    every set goes through the same masks, drawn once."""
    cfg, device = job.cfg, job.device
    rows: dict[str, list] = {name: [] for name in tables.SCHEMAS["uncertainty"].names}
    batch = cfg.uncertainty.batch_size
    total = sum(len(s.rows) for s in sets)
    bar = tqdm(total=total, desc=f"mc-dropout p={p:g} {sets[0].attack or 'clean'}", unit="img",
               disable=not job.progress, leave=False)
    all_labels = labels.numpy()
    for start in range(0, len(image_ids), batch):
        stop = min(start + batch, len(image_ids))
        # An image shared by several sets (wrong before the attack: the original; the same budget picked
        # twice) goes through the masks once: its masks are keyed by its id, so the result is the same.
        unique: dict[tuple[int, bytes], int] = {}
        picked = []
        for s in sets:
            lo, hi = np.searchsorted(s.rows, [start, stop])
            if hi == lo:
                continue
            at = [unique.setdefault((int(r), img.tobytes()), len(unique))
                  for r, img in zip(s.rows[lo:hi], s.images[lo:hi])]
            picked.append((s, s.rows[lo:hi] - start, np.asarray(at)))
        if not unique:
            continue
        flat = {k: (r, img) for (r, img), k in unique.items()}
        pixels = np.stack([np.frombuffer(flat[k][1], dtype=np.uint8) for k in range(len(unique))]).reshape(
            len(unique), *sets[0].images.shape[1:])
        x = torch.from_numpy(pixels).to(device).float().div_(255.0)
        rows_u = np.asarray([flat[k][0] for k in range(len(unique))]) - start
        probs = mc_probs(model, x, image_ids[start:stop], cfg.uncertainty.passes, cfg.seed, rows=rows_u).cpu().numpy()
        with torch.no_grad():
            plain = torch.softmax(model.eval()(x), dim=1).cpu()
        for s, r, at in picked:
            batch_labels = all_labels[start + r]
            measures = image_measures(probs[:, at], batch_labels)
            rows["image_id"] += [image_ids[start + int(i)] for i in r]
            rows["dropout_p"] += [p] * len(r)
            for key, value in (("condition", s.name), ("attack", s.attack), ("operating_point", s.operating_point),
                               ("eps", s.eps), ("noise", s.noise)):
                rows[key] += [value] * len(r)
            rows["label"] += batch_labels.tolist()
            rows["plain_pred"] += plain[at].argmax(1).tolist()
            rows["max_prob"] += plain[at].amax(1).tolist()
            for name, values in measures.items():
                rows[name] += list(values)
            bar.update(len(r))
    bar.close()
    return rows


def batch_block(cfg: RunConfig) -> int:
    """Smallest run of images that is a whole number of MC and attack batches: shards are cut there."""
    return math.lcm(cfg.uncertainty.batch_size, cfg.attacks.batch_size)


def run_metadata(cfg: RunConfig, train: datasets.Dataset, test: datasets.Dataset, models: dict[float, Classifier],
                 attack_cfg: AttacksConfig, device: torch.device) -> dict[str, Any]:
    """What the manifest says about the run besides its results: config, data, models, versions."""
    return {
        "schema_version": tables.SCHEMA_VERSION, "run": cfg.name, "config": cfg.to_dict(),
        "attacks": {"enabled": list(attack_cfg.enabled), "resolved": to_plain(attack_cfg),
                    "noise": {a: attacks.ATTACKS[a].noise for a in attack_cfg.enabled}},
        "dataset": {"name": test.name, "split": test.split, "class_names": list(test.class_names),
                    "image_shape": list(test.image_shape), "test_images": len(test), "train_images": len(train),
                    "sha256": test.fingerprint()},
        "models": [{"dropout_p": p, "architecture": m.meta["architecture"],
                    "checkpoint": f"{MODELS_DIR}/{checkpoint_path(cfg, p).name}",
                    "checkpoint_sha256": file_sha256(checkpoint_path(cfg, p)),
                    "train_seconds": m.meta.get("train_seconds"), "epochs": m.meta.get("epochs")}
                   for p, m in models.items()],
        "device": str(device), "versions": versions(),
    }


def make_plan(cfg: RunConfig, test: datasets.Dataset, models: dict[float, Classifier], attack_cfg: AttacksConfig,
              shards: int) -> tuple[Part, ...]:
    """Every part of every shard. Keys name exactly what each part depends on."""
    images, labels, ids = test.images.numpy(), test.labels.numpy(), test.image_ids.numpy()
    plan: list[Part] = []

    def add(shard: int, p: float | None, unit: str, condition: str | None, digest: str, **reads: str | None) -> Part:
        part = Part(shard, p, unit, condition, digest, parts.part_path(p, unit, condition, shard, shards, digest),
                    **reads)
        plan.append(part)
        return part

    for k in range(shards):
        pos = parts.shard_positions(len(test), k, shards, batch_block(cfg))
        data_key = parts.key(schema=parts.PARTS_VERSION, data=parts.data_fingerprint(images[pos], labels[pos], ids[pos]))
        add(k, None, "data", None, data_key)
        for p, model in models.items():
            # Batch sizes are inputs too: float kernels round differently for different batch shapes.
            common = {"schema": parts.PARTS_VERSION, "data": data_key, "weights": model.meta["weights_sha256"],
                      "seed": cfg.seed, "uncertainty": {"passes": cfg.uncertainty.passes,
                                                        "batch_size": cfg.uncertainty.batch_size},
                      "attack_batch": cfg.attacks.batch_size}
            made = {"clean": add(k, p, "clean", "clean", parts.key(unit="clean", **common))}
            for a in attack_cfg.enabled:
                made[a] = add(k, p, "attack", a, parts.key(unit=a, attack=to_plain(getattr(attack_cfg, a)),
                                                           kappa=attack_cfg.kappa, **common))
            ranking = made.get("fgsm")
            for condition, images_part in made.items():
                add(k, p, "activations", condition, parts.key(
                    unit="activations", condition=images_part.key, selection=ranking.key if ranking else None,
                    activations=to_plain(cfg.activations), **common),
                    ranking=ranking.path if ranking else None,
                    source=images_part.path if condition != "clean" else None)
                add(k, p, "features", condition, parts.key(
                    unit="features", condition=images_part.key, points=list(attacks.TILED_POINTS), **common),
                    source=images_part.path if condition != "clean" else None)
    return tuple(plan)


@dataclass(frozen=True)
class Job:
    """What every part of one shard is computed with."""

    cfg: RunConfig
    attack_cfg: AttacksConfig  # resolved for the data
    test: datasets.Dataset
    positions: np.ndarray  # the shard's positions in the test set
    models: dict[float, Classifier]  # on ``device``
    device: torch.device
    progress: bool

    @property
    def image_ids(self) -> list[int]:
        return self.test.image_ids[self.positions].tolist()

    @property
    def labels(self) -> torch.Tensor:
        return self.test.labels[self.positions]


def compute_data(part: Part, job: Job) -> dict[str, Any]:
    return {"arrays": {"images": job.test.images[job.positions].numpy(), "labels": job.labels.numpy(),
                       "image_ids": np.asarray(job.image_ids)}}


def compute_clean(part: Part, job: Job) -> dict[str, Any]:
    model, t = job.models[part.dropout_p], time.perf_counter()
    clean = attacks.Condition("clean", None, None, None, False, job.test.images[job.positions].numpy(),
                              np.arange(len(job.positions)))
    rows = uncertainty_rows(model, [clean], job.image_ids, job.labels, part.dropout_p, job)
    return {"rows": {"uncertainty": rows}, "seconds": {"mc_dropout": time.perf_counter() - t}}


def compute_attack(part: Part, job: Job) -> dict[str, Any]:
    """One attack at every operating point, the noise controls, and MC dropout of all of them. An
    attack with a subset (``subset()`` > 0) runs on the shard's images among its evenly spaced subset."""
    model, p, name = job.models[part.dropout_p], part.dropout_p, part.condition
    chosen = attacks.subset_positions(len(job.test), getattr(job.attack_cfg, name).subset())
    mine = np.flatnonzero(np.isin(job.positions, chosen))
    ids, labels = [job.image_ids[i] for i in mine], job.labels[mine]
    out = attacks.run_attack(name, model, job.test.floats(torch.as_tensor(job.positions[mine])), labels, ids, p,
                             job.attack_cfg, job.device, job.progress, job.cfg.seed)
    t = time.perf_counter()
    rows = uncertainty_rows(model, out.conditions, ids, labels, p, job) if ids else \
        {k: [] for k in tables.SCHEMAS["uncertainty"].names}
    arrays = {"image_ids": np.asarray(ids, dtype=np.int64)}
    for point in attacks.TILED_POINTS:  # the pictures the site tiles (none when the shard has no image to attack)
        condition = tables.condition_name(part.condition, point)
        arrays[f"images-{condition}"] = np.zeros((0, *job.test.image_shape), dtype=np.uint8)
        arrays[f"rows-{condition}"] = np.zeros(0, dtype=np.int64)
    for c in out.conditions:
        if c.operating_point in attacks.TILED_POINTS and not c.noise:  # noise controls are not pictured
            arrays[f"images-{c.name}"], arrays[f"rows-{c.name}"] = c.images, c.rows
    return {"rows": {"attacks": out.rows, "uncertainty": rows}, "arrays": arrays,
            "seconds": {name: out.seconds, "mc_dropout": time.perf_counter() - t}}


def compute_activations(part: Part, job: Job) -> dict[str, Any]:
    """Feature maps of this shard's candidate images (its most robust and most vulnerable per class by
    FGSM's min_eps, plus configured ids) under one condition: ids and one float16 array per layer."""
    results, ids, t = job.cfg.results_dir, job.image_ids, time.perf_counter()
    if part.ranking is not None:  # only its table is needed: the selection uses min_eps
        fg = pd.read_parquet(results / part.ranking / "attacks.parquet",
                             columns=["image_id", "operating_point", "clean_correct", "min_eps"])
        fg = fg[fg["operating_point"] == "minimal"].set_index("image_id").reindex(ids)
        min_eps, correct = fg["min_eps"].to_numpy(dtype=np.float64), fg["clean_correct"].to_numpy(dtype=bool)
        per_class = job.cfg.activations.per_class
    else:
        min_eps, correct, per_class = np.full(len(ids), np.nan), None, 0
    chosen = activations.select_images(job.labels.numpy(), np.asarray(ids), min_eps, per_class,
                                       job.cfg.activations.image_ids, correct)
    if part.source is None:
        images = job.test.floats(torch.as_tensor(job.positions[chosen]))
    else:  # the 8-bit minimal adversarial that the tiles show (an attack on a subset has fewer images)
        stored = parts.read_part(results / part.source).arrays
        attacked = {int(i): k for k, i in enumerate(stored["image_ids"][stored[f"rows-{part.condition}"]])}
        chosen = [i for i in chosen if int(ids[i]) in attacked]
        adversarial = stored[f"images-{part.condition}"][[attacked[int(ids[i])] for i in chosen]]
        images = torch.from_numpy(adversarial).float().div_(255.0)
    arrays = {"image_ids": np.asarray([ids[i] for i in chosen], dtype=np.int64)}
    if chosen:
        maps = activations.feature_maps(job.models[part.dropout_p], images.to(job.device), job.cfg.activations.max_maps)
        arrays.update({f"layer-{layer}": values for layer, values in maps.items()})
    return {"arrays": arrays, "seconds": {"activations": time.perf_counter() - t}}


def compute_features(part: Part, job: Job) -> dict[str, Any]:
    """Penultimate features (float16) of the shard's clean images, or of an attack's minimal and
    confident adversarials (8-bit, as tiled; an attack on a subset has fewer), with their image ids:
    arrays ``image_ids-<condition>`` and ``features-<condition>`` per condition."""
    t = time.perf_counter()
    if part.source is None:
        sets = {"clean": (np.asarray(job.image_ids, dtype=np.int64), job.test.images[job.positions].numpy())}
    else:
        stored = parts.read_part(job.cfg.results_dir / part.source).arrays
        sets = {}
        for point in attacks.TILED_POINTS:
            name = tables.condition_name(part.condition, point)
            sets[name] = (stored["image_ids"][stored[f"rows-{name}"]], stored[f"images-{name}"])
    # Batches are runs of test positions cut at multiples of the MC batch size, which shards respect:
    # every image meets the same batch mates in any sharding, so the floats agree to the last bit.
    where = dict(zip(job.image_ids, job.positions.tolist()))
    model, arrays = job.models[part.dropout_p], {}
    for name, (ids, pixels) in sets.items():
        group = np.asarray([where[int(i)] // job.cfg.uncertainty.batch_size for i in ids], dtype=np.int64)
        found = []
        for g in np.unique(group):
            chosen = np.flatnonzero(group == g)
            x = torch.from_numpy(pixels[chosen]).to(job.device).float().div_(255.0)
            found.append((chosen, embedding.features(model, x)))
        values = np.zeros((len(ids), embedding.feature_size(model)), dtype=np.float32)
        for chosen, f in found:
            values[chosen] = f
        arrays[f"image_ids-{name}"] = np.asarray(ids, dtype=np.int64)
        arrays[f"features-{name}"] = values.astype(np.float16)
    return {"arrays": arrays, "seconds": {"features": time.perf_counter() - t}}


# unit -> function computing a part's tables ("rows"), arrays and timings ("seconds").
UNITS = {"data": compute_data, "clean": compute_clean, "attack": compute_attack, "activations": compute_activations,
         "features": compute_features}


def compute(cfg: RunConfig, progress: bool = True, shard: tuple[int, int] = (0, 1)) -> StageSummary:
    """Compute the missing parts of shard ``shard`` = (k, n) of ``results/<run>/``; when every part of
    every shard exists, assemble the tables, tiles and manifest."""
    start = time.perf_counter()
    k, n = shard
    out = cfg.results_dir
    ensure_writable(out)
    (out / "manifest.json").unlink(missing_ok=True)  # until reassembled, this run is not a finished result
    device = resolve_device(cfg.device)
    train, test = datasets.load(cfg.data)
    # Channels-last convolutions run about twice as fast on the CPU, for MC dropout and attacks alike.
    models = {p: m.to(device, memory_format=torch.channels_last) for p, m in load_models(cfg, test).items()}
    attack_cfg = attacks.resolve(cfg.attacks, test.image_shape[0])
    plan = Plan(n, run_metadata(cfg, train, test, models, attack_cfg, device),
                make_plan(cfg, test, models, attack_cfg, n))
    plan.write(out)
    job = Job(cfg, attack_cfg, test, parts.shard_positions(len(test), k, n, batch_block(cfg)), models, device, progress)
    reused = computed = 0
    for part in plan.parts:
        if part.shard != k:
            continue
        if part.done(out):
            reused += 1
            continue
        made = UNITS[part.unit](part, job)
        meta = {"key": part.key, "unit": part.unit, "condition": part.condition, "dropout_p": part.dropout_p,
                "shard": part.shard, "seconds": made.get("seconds", {})}
        parts.write_part(out / part.path, made.get("rows", {}), made.get("arrays", {}), meta)
        computed += 1
    notes = [f"shard {k + 1}/{n}" if n > 1 else "", f"reused {reused} part(s), computed {computed}"]
    accuracies: dict[float, float] = {}
    try:
        manifest = assemble.assemble(out)
        accuracies = {m["dropout_p"]: m["accuracy"] for m in manifest["models"]}
    except assemble.IncompleteError as exc:
        notes.append(f"not assembled yet: {exc}")
    return StageSummary("compute", len(job.positions), accuracies, time.perf_counter() - start, out,
                        [x for x in notes if x], reused, computed)
