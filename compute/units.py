"""The units of the plan: what computes one part (compute/parts.py) of one shard.

Each function takes the part (what it reads and where it writes) and the shard's ``Job`` and returns
the part's tables ("rows"), arrays and timings ("seconds"); compute/pipeline.py writes them.
- ``data``: the shard's test images, labels and ids;
- ``clean``: the uncertainty method's passes over the clean images;
- ``attack``: one attack at every operating point with its noise controls, and the passes over all of them;
- ``activations``: feature maps of the shard's selected images under one condition;
- ``features``: penultimate features of the clean images or of an attack's tiled adversarials;
- ``survival``: an attack's tiled adversarials judged afresh: do they still fool after each
  transformation, and on every other model (compute/survival.py)?
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import activations, datasets, embedding, parts, survival
from .attacks import ATTACKS
from .attacks.runner import Condition, run_attack
from .attacks.spec import subset_positions
from .config import AttacksConfig, RunConfig
from .contract import REFERENCE, SCHEMAS, TILED_POINTS, condition_name
from .methods import METHODS
from .metrics import image_measures
from .models import Classifier
from .parts import Part
from .pixels import to_float


@dataclass(frozen=True)
class Job:
    """What every part of one shard is computed with."""

    cfg: RunConfig
    attack_cfg: AttacksConfig  # resolved for the data
    test: datasets.Dataset
    positions: np.ndarray  # the shard's positions in the test set
    models: dict[str, Classifier]  # by model key, on ``device``
    specs: dict[str, dict[str, Any]]  # by model key: the manifest's entry (method, dropout_p, ...)
    device: torch.device
    progress: bool
    train: datasets.Dataset
    reference: np.ndarray  # the shard's reference positions in the training set (the feature maps' fit)

    @property
    def image_ids(self) -> list[int]:
        return self.test.image_ids[self.positions].tolist()

    @property
    def labels(self) -> torch.Tensor:
        return self.test.labels[self.positions]


def uncertainty_rows(key: str, sets: list[Condition], image_ids: list[int], labels: torch.Tensor,
                     job: Job) -> dict[str, list]:
    """The uncertainty method's measures of every image set (clean or a condition of an attack;
    ``positions`` ascending among ``image_ids``) for model ``key``, as uncertainty-table columns, with
    the prediction and top probability of the model with dropout off (``plain_pred``, ``max_prob``).
    In each batch of images every set goes through the same masks, drawn once."""
    cfg, device, model, spec = job.cfg, job.device, job.models[key], job.specs[key]
    pass_probs = METHODS[spec["method"]].pass_probs
    rows: dict[str, list] = {name: [] for name in SCHEMAS["uncertainty"].names}
    batch = cfg.uncertainty.batch_size
    total = sum(len(s.positions) for s in sets)
    bar = tqdm(total=total, desc=f"{spec['method']} {key} {sets[0].attack or 'clean'}", unit="img",
               disable=not job.progress, leave=False)
    all_labels = labels.numpy()
    for start in range(0, len(image_ids), batch):
        stop = min(start + batch, len(image_ids))
        # An image shared by several sets (wrong before the attack: the original; the same budget picked
        # twice) goes through the masks once: its masks are keyed by its id, so the result is the same.
        unique: dict[tuple[int, bytes], int] = {}
        picked = []
        for s in sets:
            lo, hi = np.searchsorted(s.positions, [start, stop])
            if hi == lo:
                continue
            at = [unique.setdefault((int(r), img.tobytes()), len(unique))
                  for r, img in zip(s.positions[lo:hi], s.images[lo:hi])]
            picked.append((s, s.positions[lo:hi] - start, np.asarray(at)))
        if not unique:
            continue
        flat = {k: (r, img) for (r, img), k in unique.items()}
        pixels = np.stack([np.frombuffer(flat[k][1], dtype=np.uint8) for k in range(len(unique))]).reshape(
            len(unique), *sets[0].images.shape[1:])
        x = to_float(torch.from_numpy(pixels), device)
        where = np.asarray([flat[k][0] for k in range(len(unique))]) - start
        probs = pass_probs(model, x, image_ids[start:stop], cfg.uncertainty.passes, cfg.seed,
                           positions=where).cpu().numpy()
        with torch.no_grad():
            plain = torch.softmax(model.eval()(x), dim=1).cpu()
        for s, r, at in picked:
            batch_labels = all_labels[start + r]
            measures = image_measures(probs[at], batch_labels)
            rows["image_id"] += [image_ids[start + int(i)] for i in r]
            for column, value in (("model", key), ("dropout_p", spec["dropout_p"]), ("condition", s.name),
                                  ("attack", s.attack), ("operating_point", s.operating_point), ("eps", s.eps),
                                  ("noise", s.noise)):
                rows[column] += [value] * len(r)
            rows["label"] += batch_labels.tolist()
            rows["plain_pred"] += plain[at].argmax(1).tolist()
            rows["max_prob"] += plain[at].amax(1).tolist()
            for name, values in measures.items():
                rows[name] += list(values)
            bar.update(len(r))
    bar.close()
    return rows


def compute_data(part: Part, job: Job) -> dict[str, Any]:
    return {"arrays": {"images": job.test.images[job.positions].numpy(), "labels": job.labels.numpy(),
                       "image_ids": np.asarray(job.image_ids)}}


def compute_clean(part: Part, job: Job) -> dict[str, Any]:
    t = time.perf_counter()
    clean = Condition.clean(job.test.images[job.positions].numpy())
    rows = uncertainty_rows(part.model, [clean], job.image_ids, job.labels, job)
    return {"rows": {"uncertainty": rows}, "seconds": {"uncertainty": time.perf_counter() - t}}


def compute_attack(part: Part, job: Job) -> dict[str, Any]:
    """One attack at every operating point, the noise controls, and the uncertainty method's passes
    over all of them. An attack with a subset (``subset()`` > 0) runs on the shard's images among its
    evenly spaced subset."""
    key, name = part.model, part.condition
    chosen = subset_positions(len(job.test), getattr(job.attack_cfg, name).subset())
    mine = np.flatnonzero(np.isin(job.positions, chosen))
    ids, labels = [job.image_ids[i] for i in mine], job.labels[mine]
    out = run_attack(name, job.models[key], job.test.floats(torch.as_tensor(job.positions[mine])), labels, ids, key,
                     job.specs[key]["dropout_p"], job.attack_cfg, job.device, job.progress, job.cfg.seed)
    t = time.perf_counter()
    rows = uncertainty_rows(key, out.conditions, ids, labels, job) if ids else \
        {k: [] for k in SCHEMAS["uncertainty"].names}
    arrays = {"image_ids": np.asarray(ids, dtype=np.int64)}
    for point in TILED_POINTS:  # the pictures the site tiles (none when the shard has no image to attack)
        condition = condition_name(name, point)
        arrays[f"images-{condition}"] = np.zeros((0, *job.test.image_shape), dtype=np.uint8)
        arrays[f"positions-{condition}"] = np.zeros(0, dtype=np.int64)
    for c in out.conditions:
        if c.operating_point in TILED_POINTS and not c.noise:  # noise controls are not pictured
            arrays[f"images-{c.name}"], arrays[f"positions-{c.name}"] = c.images, c.positions
    return {"rows": {"attacks": out.rows, "uncertainty": rows}, "arrays": arrays,
            "seconds": {name: out.seconds, "uncertainty": time.perf_counter() - t}}


def compute_activations(part: Part, job: Job) -> dict[str, Any]:
    """Feature maps of this shard's candidate images (its most robust and most vulnerable per class by
    the ranking attack, plus configured ids) under one condition: ids and one float16 array per layer."""
    results, ids, t = job.cfg.results_dir, job.image_ids, time.perf_counter()
    ranked_by = job.attack_cfg.ranked_by
    column = ATTACKS[ranked_by].card.ranking_column if ranked_by else ""
    ranking = None
    if part.ranking is not None and ranked_by is not None:  # only its table is needed
        ranking = pd.read_parquet(results / part.ranking / "attacks.parquet",
                                  columns=["image_id", "operating_point", "clean_correct", "success", "adv_prob", column])
    chosen = activations.select_images(ranking, column, job.labels.numpy(), np.asarray(ids), job.cfg.activations)
    if part.source is None:
        images = job.test.floats(torch.as_tensor(job.positions[chosen]))
    else:  # the 8-bit minimal adversarial that the tiles show (an attack on a subset has fewer images)
        stored = parts.read_part(results / part.source).arrays
        attacked = {int(i): k for k, i in enumerate(stored["image_ids"][stored[f"positions-{part.condition}"]])}
        chosen = [i for i in chosen if int(ids[i]) in attacked]
        images = to_float(stored[f"images-{part.condition}"][[attacked[int(ids[i])] for i in chosen]])
    arrays = {"image_ids": np.asarray([ids[i] for i in chosen], dtype=np.int64)}
    if chosen:
        maps = activations.feature_maps(job.models[part.model], images.to(job.device), job.cfg.activations.max_maps)
        arrays.update({f"layer-{layer}": values for layer, values in maps.items()})
    return {"arrays": arrays, "seconds": {"activations": time.perf_counter() - t}}


def compute_features(part: Part, job: Job) -> dict[str, Any]:
    """Penultimate features (float16) of the shard's clean images, of its reference (training) images,
    or of an attack's minimal and confident adversarials (8-bit, as tiled; an attack on a subset has
    fewer), with their image ids: arrays ``image_ids-<condition>`` and ``features-<condition>`` per
    condition."""
    t = time.perf_counter()
    if part.condition == REFERENCE:
        # Whole MC batches of the reference sample (pipeline.reference_shard): same batches in any sharding.
        model, ids = job.models[part.model], job.train.image_ids[job.reference].numpy()
        size = job.cfg.uncertainty.batch_size
        values = [embedding.features(model, to_float(job.train.images[torch.as_tensor(job.reference[i:i + size])],
                                                     job.device))
                  for i in range(0, len(ids), size)]
        stacked = np.concatenate(values) if values else np.zeros((0, embedding.feature_size(model)), np.float32)
        return {"arrays": {f"image_ids-{REFERENCE}": ids.astype(np.int64),
                           f"features-{REFERENCE}": stacked.astype(np.float16)},
                "seconds": {"features": time.perf_counter() - t}}
    if part.source is None:
        sets = {"clean": (np.asarray(job.image_ids, dtype=np.int64), job.test.images[job.positions].numpy())}
    else:
        stored = parts.read_part(job.cfg.results_dir / part.source).arrays
        sets = {}
        for point in TILED_POINTS:
            name = condition_name(part.condition, point)
            sets[name] = (stored["image_ids"][stored[f"positions-{name}"]], stored[f"images-{name}"])
    # Batches are runs of test positions cut at multiples of the MC batch size, which shards respect:
    # every image meets the same batch mates in any sharding, so the floats agree to the last bit.
    where = dict(zip(job.image_ids, job.positions.tolist()))
    model, arrays = job.models[part.model], {}
    for name, (ids, pixels) in sets.items():
        group = np.asarray([where[int(i)] // job.cfg.uncertainty.batch_size for i in ids], dtype=np.int64)
        values = by_batch(lambda x: embedding.features(model, x), pixels, group, job.device,
                          (embedding.feature_size(model),), np.float32)
        arrays[f"image_ids-{name}"] = np.asarray(ids, dtype=np.int64)
        arrays[f"features-{name}"] = values.astype(np.float16)
    return {"arrays": arrays, "seconds": {"features": time.perf_counter() - t}}


def by_batch(fn, pixels: np.ndarray, groups: np.ndarray, device: torch.device, shape: tuple[int, ...],
             dtype: type) -> np.ndarray:
    """``fn`` (float images on ``device`` -> numpy rows of ``shape``) over uint8 ``pixels``, one batch per
    group: the images' MC batches (test position // batch size), which shards never cut, so every image
    meets the same batch mates in any sharding and the floats agree to the last bit."""
    out = np.zeros((len(pixels), *shape), dtype=dtype)
    for g in np.unique(groups):
        chosen = np.flatnonzero(groups == g)
        out[chosen] = fn(to_float(pixels[chosen], device))
    return out


def compute_survival(part: Part, job: Job) -> dict[str, Any]:
    """An attack's successful minimal and confident adversarials (read from ``source``) judged afresh by
    ``survival.judge``: table ``survival``."""
    t = time.perf_counter()
    stored = parts.read_part(job.cfg.results_dir / part.source)
    won = stored.tables["attacks"].query("success")
    where = dict(zip(job.image_ids, range(len(job.positions))))
    labels, originals = job.labels.numpy(), job.test.images[job.positions].numpy()
    size = job.cfg.uncertainty.batch_size

    def predict(key: str, pixels: np.ndarray, at: np.ndarray) -> np.ndarray:
        model = job.models[key].eval()
        with torch.no_grad():
            return by_batch(lambda x: model(x).argmax(1).cpu().numpy(), pixels, job.positions[at] // size,
                            job.device, (), np.int64)
    out: dict[str, list] = {k: [] for k in SCHEMAS["survival"].names}
    for point in TILED_POINTS:
        name = condition_name(part.condition, point)
        ids = stored.arrays["image_ids"][stored.arrays[f"positions-{name}"]]
        keep = np.isin(ids, won.loc[won["operating_point"] == point, "image_id"])
        at = np.asarray([where[int(i)] for i in ids[keep]], dtype=np.int64)
        rows = survival.judge(part.model, list(job.models), stored.arrays[f"images-{name}"][keep], at, ids[keep],
                              originals, labels, predict, job.cfg.seed)
        for column, value in (("model", part.model), ("dropout_p", job.specs[part.model]["dropout_p"]),
                              ("attack", part.condition), ("operating_point", point)):
            out[column] += [value] * len(rows["image_id"])
        for column, values in rows.items():
            out[column] += values
    return {"rows": {"survival": out}, "seconds": {"survival": time.perf_counter() - t}}


# unit -> function computing a part's tables ("rows"), arrays and timings ("seconds").
UNITS = {"data": compute_data, "clean": compute_clean, "attack": compute_attack, "activations": compute_activations,
         "features": compute_features, "survival": compute_survival}
