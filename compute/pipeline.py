"""The one orchestration of the batch stage: train the models, then compute every table and tile.

``results/<run>/`` holds ``models/`` (checkpoints), ``parts/`` (see compute/parts.py), and, once
every part of every shard is there, the Parquet tables, ``tiles/`` and ``manifest.json``. The
manifest is written last and removed first, so a directory without one is never taken for a
finished result. A re-run reuses every part whose inputs did not change.
"""
from __future__ import annotations

import hashlib
import math
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import assemble, attacks, datasets, embedding, ood, parts, survival, workers
from .config import AttacksConfig, ConfigError, RunConfig, to_plain
from .contract import CLEAN, ENSEMBLE_METHODS, METHOD_LABELS, REFERENCE, SCHEMA_VERSION, TILED_POINTS, file_sha256, model_key
from .methods import METHODS
from .methods.ensemble import Ensemble, share_positions
from .models import CheckpointError, Classifier, load_checkpoint, resolve_architecture, save_checkpoint
from .parts import Part, Plan
from .train import train_model
from .units import UNITS, Job

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


def planned_models(cfg: RunConfig, image_shape: tuple[int, ...]) -> dict[str, dict[str, Any]]:
    """The run's models by key, in the order of ``uncertainty.methods``, each with what it is: label,
    uncertainty method, architecture, dropout rate at inference (None for an ensemble) and its members'
    training (``members``: seed offset, share of the training set, dropout rate), as each method plans them."""
    architecture = resolve_architecture(cfg.model.architecture, tuple(image_shape))
    out: dict[str, dict[str, Any]] = {}
    for method in cfg.uncertainty.methods:
        if method not in METHODS:
            raise ConfigError(f"config key uncertainty.methods names unknown uncertainty method {method!r}; valid "
                              f"methods: {', '.join(METHODS)}")
        for tag, spec in METHODS[method].plan(cfg).items():
            out[model_key(architecture, tag)] = {**spec, "method": method, "architecture": architecture}
    return out


def checkpoint_path(cfg: RunConfig, key: str, member: int | None = None) -> Path:
    """``models/<key>.pt``, or ``models/<key>-m<k>.pt`` for member k of an ensemble."""
    name = key if member is None else f"{key}-m{member}"
    return cfg.results_dir / MODELS_DIR / f"{name}.pt"


def member_paths(cfg: RunConfig, key: str, spec: dict[str, Any]) -> list[Path]:
    """Every checkpoint of model ``key``: its one file, or one per ensemble member."""
    if spec["method"] in ENSEMBLE_METHODS:
        return [checkpoint_path(cfg, key, k) for k in range(len(spec["members"]))]
    return [checkpoint_path(cfg, key)]


@dataclass
class StageSummary:
    """What a stage did, for the one-line summary the CLI prints."""

    stage: str
    n_images: int
    accuracies: dict[str, float]  # by model key
    seconds: float
    path: Path
    notes: list[str] = field(default_factory=list)
    reused: int = 0  # parts found up to date
    computed: int = 0  # parts computed by this call

    def line(self) -> str:
        acc = ", ".join(f"{key} {a:.1%}" for key, a in self.accuracies.items())
        extra = "".join(f"; {n}" for n in self.notes)
        accuracy = f", accuracy {acc}" if acc else ""
        return f"{self.stage}: {self.n_images} images{accuracy}, {self.seconds:.1f} s{extra} -> {self.path}"


def train_member(cfg: RunConfig, train: datasets.Dataset, test: datasets.Dataset, member: dict[str, Any],
                 path: Path, device: torch.device, progress: bool) -> float:
    """Train one checkpoint (a model, or one member of an ensemble: ``member`` is its plan entry) on its
    share of the training set and save it at ``path``; returns its clean test accuracy, dropout off."""
    seed = cfg.seed + member["seed_offset"]
    positions = share_positions(len(train), member["share"], seed)
    seen = train if len(positions) == len(train) else train.subset(torch.as_tensor(positions))
    result = train_model(seen, test, member["dropout_p"], cfg.model, cfg.train, seed, device, progress)
    result.model.meta.update(train_seconds=round(result.seconds, 3), share=member["share"],
                             train_ids_sha256=ids_sha256(seen.image_ids.numpy()), threads=torch.get_num_threads())
    save_checkpoint(result.model.cpu(), path)
    return result.accuracy


def ids_sha256(image_ids: np.ndarray) -> str:
    """sha256 of image ids (int64, in order): which training images a checkpoint saw."""
    return hashlib.sha256(np.asarray(image_ids, dtype=np.int64).tobytes()).hexdigest()


_WORKER_DATA: dict[str, tuple[datasets.Dataset, datasets.Dataset]] = {}  # a training worker's data, loaded once


def _train_in_worker(cfg: RunConfig, member: dict[str, Any], path: Path, threads: int) -> float:
    torch.set_num_threads(threads)
    if "data" not in _WORKER_DATA:
        _WORKER_DATA["data"] = datasets.load(cfg.data)
    train, test = _WORKER_DATA["data"]
    return train_member(cfg, train, test, member, path, resolve_device(cfg.device), progress=False)


def train_all(cfg: RunConfig, progress: bool = True) -> StageSummary:
    """Train every checkpoint of every planned model (``results/<run>/models/<key>.pt``, and
    ``<key>-m<k>.pt`` per ensemble member), in ``cfg.workers`` processes side by side on a CPU (two
    processes of one thread each train about a fifth faster than one of two threads: docs/benchmarks.md)."""
    start = time.perf_counter()
    ensure_writable(cfg.results_dir / MODELS_DIR)
    device = resolve_device(cfg.device)
    train, test = datasets.load(cfg.data)
    jobs = [(key, member, path) for key, spec in planned_models(cfg, train.image_shape).items()
            for member, path in zip(spec["members"], member_paths(cfg, key, spec))]
    count = min(workers.auto_workers(cfg.workers, device.type, len(test), cfg.attacks.batch_size), len(jobs))
    accuracies: dict[str, list[float]] = {}
    if count <= 1:
        for key, member, path in tqdm(jobs, desc="train", unit="checkpoint", disable=not progress or len(jobs) < 2):
            accuracies.setdefault(key, []).append(train_member(cfg, train, test, member, path, device, progress))
    else:
        # The largest first (a share of the training set trains faster), so that the two end together.
        order = sorted(range(len(jobs)), key=lambda k: -jobs[k][1]["share"])
        found: dict[int, float] = {}
        with workers.fresh_processes() as context, ProcessPoolExecutor(count, mp_context=context) as pool:
            futures = {pool.submit(_train_in_worker, cfg, jobs[k][1], jobs[k][2], workers.threads_per_worker(count)): k
                       for k in order}
            for future in tqdm(as_completed(futures), total=len(futures), desc=f"train ({count} workers)",
                               unit="checkpoint", disable=not progress):
                found[futures[future]] = future.result()
        for k, (key, _, _) in enumerate(jobs):
            accuracies.setdefault(key, []).append(found[k])
    # An ensemble's line shows its members' mean accuracy; the ensemble's own is in the manifest after compute.
    return StageSummary("train", len(train), {k: float(np.mean(v)) for k, v in accuracies.items()},
                        time.perf_counter() - start, cfg.results_dir / MODELS_DIR)


def _checked(cfg: RunConfig, test: datasets.Dataset, key: str, spec: dict[str, Any], path: Path,
             member: dict[str, Any]) -> Classifier:
    """The checkpoint at ``path``, checked against the test data it will see and the member it must be."""
    if not path.is_file():
        others = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
        held = f" (models/ holds {', '.join(others)}: trained with another config)" if others else ""
        raise CheckpointError(f"no checkpoint for model {key} ({spec['label']}) at {path}{held}; run `robustviz "
                              f"train` with the same config first (or `robustviz demo` for everything)")
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
    if abs(float(meta["dropout"]) - member["dropout_p"]) > 1e-12:
        raise CheckpointError(f"checkpoint {path} has dropout {meta['dropout']}, not {member['dropout_p']}; retrain")
    if abs(float(meta.get("share", 1.0)) - member["share"]) > 1e-12:
        raise CheckpointError(f"checkpoint {path} was trained on {meta.get('share', 1.0):.0%} of the training set, "
                              f"not {member['share']:.0%}; retrain with `robustviz train`")
    return model


def load_models(cfg: RunConfig, test: datasets.Dataset) -> dict[str, nn.Module]:
    """Every planned model by key, each checkpoint checked against the test data it will see: a
    Classifier for MC dropout, an Ensemble of its members' checkpoints for an ensemble."""
    models: dict[str, nn.Module] = {}
    for key, spec in planned_models(cfg, test.image_shape).items():
        loaded = [_checked(cfg, test, key, spec, path, member)
                  for member, path in zip(spec["members"], member_paths(cfg, key, spec))]
        models[key] = Ensemble(loaded) if spec["method"] in ENSEMBLE_METHODS else loaded[0]
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


def batch_block(cfg: RunConfig) -> int:
    """Smallest run of images that is a whole number of MC and attack batches: shards are cut there."""
    return math.lcm(cfg.uncertainty.batch_size, cfg.attacks.batch_size)


def run_metadata(cfg: RunConfig, train: datasets.Dataset, test: datasets.Dataset, models: dict[str, Classifier],
                 attack_cfg: AttacksConfig, device: torch.device, ood_set: datasets.Dataset | None = None) -> dict[str, Any]:
    """What the manifest says about the run besides its results: config, data, models, attacks (their
    cards: what the site shows of each), the OOD set (None without one), versions."""
    specs = planned_models(cfg, test.image_shape)
    return {
        "schema_version": SCHEMA_VERSION, "run": cfg.name, "config": cfg.to_dict(),
        "attacks": {"enabled": list(attack_cfg.enabled), "resolved": to_plain(attack_cfg),
                    "ranking": attack_cfg.ranked_by, "cards": attacks.cards(attack_cfg)},
        "dataset": {"name": test.name, "split": test.split, "class_names": list(test.class_names),
                    "image_shape": list(test.image_shape), "n_test_images": len(test), "n_train_images": len(train),
                    "sha256": test.fingerprint()},
        "models": [model_entry(cfg, key, specs[key]) for key in models],
        "ood": None if ood_set is None else {"dataset": ood_set.name, "label": ood.set_label(ood_set.name),
                                             "n_images": len(ood_set), "sha256": ood_set.fingerprint()},
        "device": str(device), "versions": versions(),
    }


def model_entry(cfg: RunConfig, key: str, spec: dict[str, Any]) -> dict[str, Any]:
    """What the manifest says of one model: key, label, method, architecture, dropout rate, and each of
    its checkpoints (``members``: one for MC dropout, M for an ensemble) with what it was trained on;
    ``checkpoint`` is the first, ``train_seconds`` and ``train_images`` (epochs x images) the sums."""
    members = []
    for member, path in zip(spec["members"], member_paths(cfg, key, spec)):
        meta = load_checkpoint(path).meta
        members.append({"checkpoint": f"{MODELS_DIR}/{path.name}", "checkpoint_sha256": file_sha256(path),
                        "seed": meta.get("seed"), "share": member["share"], "dropout_p": member["dropout_p"],
                        "n_train_images": meta.get("n_train_images"), "epochs": meta.get("epochs"),
                        "train_seconds": meta.get("train_seconds"), "accuracy": meta.get("accuracy")})
    seconds = [m["train_seconds"] for m in members]
    return {"key": key, "label": spec["label"], "method": spec["method"], "method_label": METHOD_LABELS[spec["method"]],
            "architecture": spec["architecture"], "dropout_p": spec["dropout_p"],
            "checkpoint": members[0]["checkpoint"], "checkpoint_sha256": members[0]["checkpoint_sha256"],
            "train_seconds": None if None in seconds else round(sum(seconds), 3), "epochs": members[0]["epochs"],
            "train_images": sum((m["epochs"] or 0) * (m["n_train_images"] or 0) for m in members),
            "members": members}


def reference_shard(cfg: RunConfig, n_train: int, shard: int, shards: int) -> np.ndarray:
    """The training-set positions of shard ``shard``'s reference images (the images the feature maps are
    fitted on): runs of whole MC batches, cut in order, so the features agree in any sharding."""
    positions = embedding.reference_positions(n_train, cfg.embedding.reference_images)
    size = cfg.uncertainty.batch_size
    batches = [positions[i:i + size] for i in range(0, len(positions), size)]
    mine = np.array_split(np.arange(len(batches)), shards)[shard]
    return np.concatenate([batches[b] for b in mine]) if len(mine) else np.zeros(0, dtype=np.int64)


def make_plan(cfg: RunConfig, train: datasets.Dataset, test: datasets.Dataset, models: dict[str, Classifier],
              attack_cfg: AttacksConfig, shards: int, ood_set: datasets.Dataset | None = None) -> tuple[Part, ...]:
    """Every part of every shard. Keys name exactly what each part depends on."""
    images, labels, ids = test.images.numpy(), test.labels.numpy(), test.image_ids.numpy()
    plan: list[Part] = []

    def add(shard: int, model: str | None, unit: str, condition: str | None, digest: str, **reads: str | None) -> Part:
        part = Part(shard, model, unit, condition, digest, parts.part_path(model, unit, condition, shard, shards, digest),
                    **reads)
        plan.append(part)
        return part

    for k in range(shards):
        pos = parts.shard_positions(len(test), k, shards, batch_block(cfg))
        data_key = parts.key(schema=parts.PARTS_VERSION, data=parts.data_fingerprint(images[pos], labels[pos], ids[pos]))
        add(k, None, "data", None, data_key)
        ref = reference_shard(cfg, len(train), k, shards)
        ref_key = parts.data_fingerprint(train.images.numpy()[ref], train.labels.numpy()[ref],
                                         train.image_ids.numpy()[ref])
        for m, model in models.items():
            # Batch sizes are inputs too: float kernels round differently for different batch shapes.
            common = {"schema": parts.PARTS_VERSION, "data": data_key, "weights": model.meta["weights_sha256"],
                      # and the methods compared: MC dropout keeps its T = M measures beside ensembles,
                      # which are attacked (and judged for transfer) on their own images
                      "seed": cfg.seed, "uncertainty": {k: v for k, v in to_plain(cfg.uncertainty).items()
                                                        if k != "bins"},
                      "attack_batch": cfg.attacks.batch_size}
            made = {CLEAN: add(k, m, "clean", CLEAN, parts.key(unit="clean", **common))}
            for a in attack_cfg.enabled:
                made[a] = add(k, m, "attack", a, parts.key(unit=a, attack=to_plain(getattr(attack_cfg, a)),
                                                           kappa=attack_cfg.kappa,
                                                           window=attack_cfg.perceptual_window, **common))
            ranking = made.get(attack_cfg.ranked_by) if attack_cfg.ranked_by else None
            for condition, images_part in made.items():
                add(k, m, "activations", condition, parts.key(
                    unit="activations", condition=images_part.key, selection=ranking.key if ranking else None,
                    activations=to_plain(cfg.activations), **common),
                    ranking=ranking.path if ranking else None,
                    source=images_part.path if condition != CLEAN else None)
                add(k, m, "features", condition, parts.key(
                    unit="features", condition=images_part.key, points=list(TILED_POINTS), **common),
                    source=images_part.path if condition != CLEAN else None)
            # Survival judges every attack's adversarials on every model: all their weights are inputs.
            weights = {other: models[other].meta["weights_sha256"] for other in models}
            for a in attack_cfg.enabled:
                add(k, m, "survival", a, parts.key(unit="survival", condition=made[a].key, models=weights,
                                                    settings=survival.SETTINGS, **common),
                    source=made[a].path)
            add(k, m, "features", REFERENCE, parts.key(unit="features", condition=REFERENCE,
                                                        **{**common, "data": ref_key}))
            if ood_set is not None:
                at = ood.shard_positions(len(ood_set), k, shards, cfg.uncertainty.batch_size)
                add(k, m, "ood", ood_set.name, parts.key(unit="ood", **{**common, "data": parts.data_fingerprint(
                    ood_set.images.numpy()[at], ood_set.labels.numpy()[at], ood_set.image_ids.numpy()[at])}))
    return tuple(plan)


def models_on(cfg: RunConfig, test: datasets.Dataset, device: torch.device) -> dict[str, Classifier]:
    """``load_models`` on ``device``, channels-last: such convolutions run about twice as fast on the CPU,
    for MC dropout and attacks alike."""
    return {key: m.to(device, memory_format=torch.channels_last) for key, m in load_models(cfg, test).items()}


def make_job(cfg: RunConfig, shard: tuple[int, int], specs: dict[str, dict[str, Any]], device: torch.device,
             progress: bool, train: datasets.Dataset | None = None, test: datasets.Dataset | None = None,
             models: dict[str, Classifier] | None = None) -> Job:
    """What every part of shard ``shard`` = (k, n) is computed with (``specs``: the manifest's model
    entries by key); the data and models are loaded when not given."""
    k, n = shard
    if train is None or test is None:
        train, test = datasets.load(cfg.data)
    if models is None:
        models = models_on(cfg, test, device)
    ood_set = ood.load(cfg.ood, cfg.data, test.image_shape, cfg.seed)
    ood_positions = (ood.shard_positions(len(ood_set), k, n, cfg.uncertainty.batch_size) if ood_set is not None
                     else np.zeros(0, dtype=np.int64))
    return Job(cfg, attacks.resolve(cfg.attacks, test.image_shape[0]),
               test, parts.shard_positions(len(test), k, n, batch_block(cfg)), models, specs, device, progress, train,
               reference_shard(cfg, len(train), k, n), ood_set, ood_positions)


def compute_part(part: Part, job: Job) -> None:
    """Compute one part with its unit (compute/units.py) and write it, atomically."""
    made = UNITS[part.unit](part, job)
    # The threads go into the meta: a kernel may round differently with another count (compute/workers.py).
    meta = {"key": part.key, "unit": part.unit, "condition": part.condition, "model": part.model,
            "shard": part.shard, "seconds": made.get("seconds", {}), "threads": torch.get_num_threads(),
            "timed": made.get("timed", {})}
    parts.write_part(job.cfg.results_dir / part.path, made.get("rows", {}), made.get("arrays", {}), meta)


_WORKER_JOB: list[Job] = []  # a worker process's job, set once by _start_worker


def _start_worker(cfg: RunConfig, shard: tuple[int, int], specs: dict[str, dict[str, Any]], device: str,
                  threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER_JOB.append(make_job(cfg, shard, specs, torch.device(device), progress=False))


def _worker_part(part: Part) -> None:
    compute_part(part, _WORKER_JOB[0])


def compute(cfg: RunConfig, progress: bool = True, shard: tuple[int, int] = (0, 1),
            command: Sequence[str] | None = None) -> StageSummary:
    """Compute the missing parts of shard ``shard`` = (k, n) of ``results/<run>/``, in ``cfg.workers``
    processes side by side (compute/workers.py); when every part of every shard exists, assemble the
    tables, tiles and manifest (``command``: the command line, for its provenance)."""
    start = time.perf_counter()
    k, n = shard
    out = cfg.results_dir
    ensure_writable(out)
    (out / "manifest.json").unlink(missing_ok=True)  # until reassembled, this run is not a finished result
    device = resolve_device(cfg.device)
    train, test = datasets.load(cfg.data)
    models = models_on(cfg, test, device)
    attack_cfg = attacks.resolve(cfg.attacks, test.image_shape[0])
    ood_set = ood.load(cfg.ood, cfg.data, test.image_shape, cfg.seed)
    run = run_metadata(cfg, train, test, models, attack_cfg, device, ood_set)
    plan = Plan(n, run, make_plan(cfg, train, test, models, attack_cfg, n, ood_set))
    plan.write(out)
    specs = {m["key"]: m for m in run["models"]}
    mine = [part for part in plan.parts if part.shard == k]
    todo = [part for part in mine if not part.done(out)]
    reused = len(mine) - len(todo)
    positions = parts.shard_positions(len(test), k, n, batch_block(cfg))
    # The worker count, and with it each process's threads, follows the run, never what is left to do:
    # a resumed run computes its last parts with the threads its first parts had (compute/workers.py).
    count = workers.auto_workers(cfg.workers, device.type, len(test), cfg.attacks.batch_size)
    if count == 1:
        job = make_job(cfg, shard, specs, device, progress, train, test, models)
        for part in todo:
            compute_part(part, job)
    elif todo:
        bar = tqdm(total=len(todo), desc=f"parts ({count} workers)", unit="part", disable=not progress)
        workers.side_by_side(todo, min(count, len(todo)), _start_worker,
                             (cfg, shard, specs, str(device), workers.threads_per_worker(count)), _worker_part,
                             on_done=lambda part: bar.update(1))
        bar.close()
    notes = [f"shard {k + 1}/{n}" if n > 1 else "", f"reused {reused} part(s), computed {len(todo)}",
             f"{count} workers" if count > 1 else ""]
    accuracies: dict[str, float] = {}
    try:
        manifest = assemble.assemble(out, command)
        accuracies = {m["key"]: m["accuracy"] for m in manifest["models"]}
    except assemble.IncompleteError as exc:
        notes.append(f"not assembled yet: {exc}")
    return StageSummary("compute", len(positions), accuracies,
                        time.perf_counter() - start, out, [x for x in notes if x], reused, len(todo))
