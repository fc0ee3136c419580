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
- ``ood``: the uncertainty method's passes over the shard's out-of-distribution images.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
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
from .contract import BUDGET, CONFIDENT, ENSEMBLE_METHODS, REFERENCE, SCHEMAS, TILED_POINTS, condition_name
from .methods import METHODS
from .methods.ensemble import Ensemble, representative
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
    ood: datasets.Dataset | None = None  # the run's out-of-distribution images (compute/ood.py), if any
    ood_positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the shard's share

    @property
    def image_ids(self) -> list[int]:
        return self.test.image_ids[self.positions].tolist()

    @property
    def labels(self) -> torch.Tensor:
        return self.test.labels[self.positions]


def equal_passes(job: Job, key: str) -> int:
    """M when model ``key`` is MC dropout run with more passes than an ensemble has members (its
    measures at T = M are kept beside, for the comparison at equal cost), else 0."""
    spec, u = job.specs[key], job.cfg.uncertainty
    ensembles = any(m in ENSEMBLE_METHODS for m in u.methods)
    return u.members if spec["method"] == "mc_dropout" and ensembles and u.members < u.passes else 0


def compared(s: Condition) -> bool:
    """Whether the comparison at equal cost reads image set ``s`` (compute/equal_cost.py): the clean
    images, the confident adversarials, and the adaptive attacker's budgets; their T = M measures are kept."""
    if s.noise:
        return False
    return s.attack is None or s.operating_point == CONFIDENT or (ATTACKS[s.attack].card.adaptive and
                                                                 s.operating_point == BUDGET)


def uncertainty_rows(key: str, sets: list[Condition], image_ids: list[int], labels: torch.Tensor,
                     job: Job, timer: dict[str, float] | None = None) -> tuple[dict[str, list], dict[str, list]]:
    """The uncertainty method's measures of every image set (clean or a condition of an attack;
    ``positions`` ascending among ``image_ids``) for model ``key``, as uncertainty-table columns, with
    the prediction of the model the attacks are judged on (``plain_pred``: dropout off, or an ensemble's
    mean) and the top probability of the baseline (``max_prob``: one model with dropout off, for an
    ensemble its first member). In each batch of images every set goes through the same masks, drawn
    once. The second table holds the same measures from the first M passes (``equal_passes``) of the
    sets ``compared`` reads (empty when it does not apply). ``timer["passes"]`` adds up the seconds spent
    drawing the passes."""
    cfg, device, model, spec = job.cfg, job.device, job.models[key], job.specs[key]
    pass_probs = METHODS[spec["method"]].pass_probs
    first = equal_passes(job, key)
    rows: dict[str, list] = {name: [] for name in SCHEMAS["uncertainty"].names}
    rows_m: dict[str, list] = {name: [] for name in SCHEMAS["uncertainty"].names}
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
        t = time.perf_counter()
        probs = pass_probs(model, x, image_ids[start:stop], cfg.uncertainty.passes, cfg.seed,
                           positions=where).cpu().numpy()
        if timer is not None:
            timer["passes"] = timer.get("passes", 0.0) + time.perf_counter() - t
        with torch.no_grad():
            plain = torch.softmax(model.eval()(x), dim=1).cpu()
            baseline = plain if not isinstance(model, Ensemble) else \
                torch.softmax(representative(model).eval()(x), dim=1).cpu()
        for s, r, at in picked:
            batch_labels = all_labels[start + r]
            for table, passes in ((rows, probs.shape[1]), (rows_m, first if compared(s) else 0)):
                if not passes:
                    continue
                measures = image_measures(probs[at][:, :passes], batch_labels)
                table["image_id"] += [image_ids[start + int(i)] for i in r]
                for column, value in (("model", key), ("dropout_p", spec["dropout_p"]), ("condition", s.name),
                                      ("attack", s.attack), ("operating_point", s.operating_point), ("eps", s.eps),
                                      ("noise", s.noise)):
                    table[column] += [value] * len(r)
                table["label"] += batch_labels.tolist()
                table["plain_pred"] += plain[at].argmax(1).tolist()
                table["max_prob"] += baseline[at].amax(1).tolist()
                for name, values in measures.items():
                    table[name] += list(values)
            bar.update(len(r))
    bar.close()
    return rows, rows_m


def compute_data(part: Part, job: Job) -> dict[str, Any]:
    return {"arrays": {"images": job.test.images[job.positions].numpy(), "labels": job.labels.numpy(),
                       "image_ids": np.asarray(job.image_ids)}}


def compute_clean(part: Part, job: Job) -> dict[str, Any]:
    """The uncertainty method's measures of the clean images (and, for MC dropout beside ensembles, at
    T = M). Timed per image, for the comparison at equal cost: ``inference``, the time spent drawing the
    passes (an ensemble: its members), and ``inference_m``, MC dropout's M passes run again by themselves."""
    t = time.perf_counter()
    clean = Condition.clean(job.test.images[job.positions].numpy())
    timer: dict[str, float] = {}
    rows, rows_m = uncertainty_rows(part.model, [clean], job.image_ids, job.labels, job, timer)
    seconds = {"uncertainty": time.perf_counter() - t}
    timed = {"inference": timer.get("passes", 0.0)}
    if equal_passes(job, part.model):
        timed["inference_m"] = inference_seconds(job, part.model, equal_passes(job, part.model))
    return {"rows": {"uncertainty": rows, "equal_passes": rows_m}, "seconds": seconds,
            "timed": {k: v / max(len(job.positions), 1) for k, v in timed.items()}}


def inference_seconds(job: Job, key: str, passes: int) -> float:
    """Wall-clock seconds of the method's per-pass probabilities for the shard's clean images with
    ``passes`` passes (an ensemble: its members), in its MC batches: what a user waits for a prediction
    with uncertainty."""
    model, spec, size = job.models[key], job.specs[key], job.cfg.uncertainty.batch_size
    pass_probs, ids = METHODS[spec["method"]].pass_probs, job.image_ids
    t = time.perf_counter()
    for start in range(0, len(ids), size):
        x = job.test.floats(torch.as_tensor(job.positions[start:start + size])).to(job.device)
        pass_probs(model, x, ids[start:start + size], passes, job.cfg.seed)
    if job.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def compute_attack(part: Part, job: Job) -> dict[str, Any]:
    """One attack at every operating point, the noise controls, and the uncertainty method's passes
    over all of them. An attack with a subset (``subset()`` > 0) runs on the shard's images among its
    evenly spaced subset."""
    key, name = part.model, part.condition
    chosen = attacked_positions(job, key, name)
    mine = np.flatnonzero(np.isin(job.positions, chosen))
    ids, labels = [job.image_ids[i] for i in mine], job.labels[mine]
    images = job.test.floats(torch.as_tensor(job.positions[mine]))
    out = run_attack(name, job.models[key], images, labels, ids, key, job.specs[key]["dropout_p"], job.attack_cfg,
                     job.device, job.progress, job.cfg.seed)
    t = time.perf_counter()
    empty = {k: [] for k in SCHEMAS["uncertainty"].names}
    rows, rows_m = uncertainty_rows(key, out.conditions, ids, labels, job) if ids else (empty, empty)
    tables = {"attacks": out.rows, "uncertainty": rows, "equal_passes": rows_m}
    seconds = {name: out.seconds, "uncertainty": time.perf_counter() - t}
    if isinstance(job.models[key], Ensemble) and ids and name in job.cfg.uncertainty.transfer_attacks:
        t = time.perf_counter()
        tables["transfer"] = transfer_rows(job, key, name, images, labels, ids)
        seconds["transfer"] = time.perf_counter() - t
    arrays = {"image_ids": np.asarray(ids, dtype=np.int64)}
    for point in TILED_POINTS:  # the pictures the site tiles (none when the shard has no image to attack)
        condition = condition_name(name, point)
        arrays[f"images-{condition}"] = np.zeros((0, *job.test.image_shape), dtype=np.uint8)
        arrays[f"positions-{condition}"] = np.zeros(0, dtype=np.int64)
    for c in out.conditions:
        if c.operating_point in TILED_POINTS and not c.noise:  # noise controls are not pictured
            arrays[f"images-{c.name}"], arrays[f"positions-{c.name}"] = c.images, c.positions
    return {"rows": tables, "arrays": arrays, "seconds": seconds}


def attacked_positions(job: Job, key: str, name: str) -> np.ndarray:
    """The test-set positions attack ``name`` runs on against model ``key``: its own evenly spaced subset
    (``max_images``), and for an ensemble ``ensemble_positions``, which lie inside every attack's subset."""
    if job.specs[key]["method"] in ENSEMBLE_METHODS:
        return ensemble_positions(len(job.test), job.attack_cfg, job.cfg.uncertainty.ensemble_images)
    return subset_positions(len(job.test), getattr(job.attack_cfg, name).subset())


def ensemble_positions(total: int, attack_cfg: AttacksConfig, limit: int) -> np.ndarray:
    """The test-set positions every attack runs on against an ensemble: ``limit`` (0: no limit) evenly
    spaced among the smallest subset of an enabled attack (EOT-PGD's and PGD's 200), itself evenly
    spaced. So they lie inside every attack's own subset, and every model is attacked by every attack on
    them: the comparison at equal cost pairs the methods there (compute/equal_cost.py)."""
    own = [getattr(attack_cfg, a).subset() for a in attack_cfg.enabled]
    smallest = min([s for s in own if 0 < s < total], default=0)
    base = subset_positions(total, smallest)
    return base[subset_positions(len(base), limit)]


def transfer_rows(job: Job, key: str, name: str, images: torch.Tensor, labels: torch.Tensor,
                  ids: list[int]) -> dict[str, list]:
    """Attack ``name`` run against the first member of ensemble ``key`` alone, on the same images, and
    its minimal and confident adversarials scored on the whole ensemble (how ensembles are attacked in
    practice: Tramèr et al. 2018): table ``transfer``, one row per image and point."""
    member = representative(job.models[key])
    made = run_attack(name, member, images, labels, ids, key, job.specs[key]["dropout_p"], job.attack_cfg, job.device,
                      False, job.cfg.seed)
    frame = pd.DataFrame(made.rows)
    sets = [c for c in made.conditions if c.operating_point in TILED_POINTS and not c.noise]
    scored, _ = uncertainty_rows(key, sets, ids, labels, job)
    scores = pd.DataFrame(scored).set_index(["image_id", "operating_point"])
    out: dict[str, list] = {k: [] for k in SCHEMAS["transfer"].names}
    for point in TILED_POINTS:
        rows = frame[frame["operating_point"] == point]
        for image_id, correct, success in zip(rows["image_id"], rows["clean_correct"], rows["success"]):
            measured = scores.loc[(image_id, point)]
            for column, value in (("image_id", int(image_id)), ("model", key), ("dropout_p", None), ("attack", name),
                                  ("operating_point", point), ("member", 0), ("member_correct", bool(correct)),
                                  ("member_success", bool(success)),
                                  ("fooled", bool(measured["plain_pred"] != measured["label"])),
                                  ("pred", int(measured["plain_pred"]))):
                out[column].append(value)
            for column in ("entropy", "mutual_info", "variation_ratio", "max_prob", "top_prob"):
                out[column].append(float(measured[column]))
    return out


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
        maps = activations.feature_maps(representative(job.models[part.model]), images.to(job.device),
                                        job.cfg.activations.max_maps)
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
        model, ids = representative(job.models[part.model]), job.train.image_ids[job.reference].numpy()
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
    model, arrays = representative(job.models[part.model]), {}
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
    # An ensemble is judged on the test images it was attacked on (uncertainty.ensemble_images), where its
    # M forwards per image stay affordable.
    subset = ensemble_positions(len(job.test), job.attack_cfg, job.cfg.uncertainty.ensemble_images)
    judged_on = {key: job.test.image_ids.numpy()[subset] for key, spec in job.specs.items()
                 if spec["method"] in ENSEMBLE_METHODS}
    for point in TILED_POINTS:
        name = condition_name(part.condition, point)
        ids = stored.arrays["image_ids"][stored.arrays[f"positions-{name}"]]
        keep = np.isin(ids, won.loc[won["operating_point"] == point, "image_id"])
        at = np.asarray([where[int(i)] for i in ids[keep]], dtype=np.int64)
        rows = survival.judge(part.model, list(job.models), stored.arrays[f"images-{name}"][keep], at, ids[keep],
                              originals, labels, predict, job.cfg.seed, judged_on)
        for column, value in (("model", part.model), ("dropout_p", job.specs[part.model]["dropout_p"]),
                              ("attack", part.condition), ("operating_point", point)):
            out[column] += [value] * len(rows["image_id"])
        for column, values in rows.items():
            out[column] += values
    return {"rows": {"survival": out}, "seconds": {"survival": time.perf_counter() - t}}


def compute_ood(part: Part, job: Job) -> dict[str, Any]:
    """The uncertainty method's measures of the shard's out-of-distribution images (table ``ood``), as
    ``uncertainty_rows`` measures clean images: the method's passes in MC batches (their masks drawn
    from a stream of their own, ``ood:<seed>``, since OOD ids are not test ids), the prediction of the
    model the attacks are judged on, and the baseline's top probability. No label, so no correctness."""
    t = time.perf_counter()
    cfg, key, spec, ood_set = job.cfg, part.model, job.specs[part.model], job.ood
    if ood_set is None:  # make_plan plans ood parts only for a run with an OOD set
        raise RuntimeError(f"part {part.path} needs the run's OOD set, and the job has none")
    model, pass_probs = job.models[key], METHODS[spec["method"]].pass_probs
    out: dict[str, list] = {k: [] for k in SCHEMAS["ood"].names}
    size = cfg.uncertainty.batch_size
    for start in range(0, len(job.ood_positions), size):
        at = job.ood_positions[start:start + size]
        x = to_float(ood_set.images[torch.as_tensor(at)], job.device)
        ids = ood_set.image_ids[torch.as_tensor(at)].tolist()
        probs = pass_probs(model, x, ids, cfg.uncertainty.passes, f"ood:{cfg.seed}").cpu().numpy()
        with torch.no_grad():
            plain = torch.softmax(model.eval()(x), dim=1).cpu()
            baseline = plain if not isinstance(model, Ensemble) else \
                torch.softmax(representative(model).eval()(x), dim=1).cpu()
        measures = image_measures(probs, np.zeros(len(at), dtype=np.int64))  # a dummy label: its columns are dropped
        out["image_id"] += ids
        out["model"] += [key] * len(at)
        out["dropout_p"] += [spec["dropout_p"]] * len(at)
        out["dataset"] += [ood_set.name] * len(at)
        out["plain_pred"] += plain.argmax(1).tolist()
        out["max_prob"] += baseline.amax(1).tolist()
        for name in ("pred", "top_prob", "entropy", "mutual_info", "variation_ratio", "mean_probs"):
            out[name] += list(measures[name])
        for name in ("sheet", "sheet_col", "sheet_row"):  # placed at assembly (assemble.write_ood_tiles)
            out[name] += [None] * len(at)
    arrays = {"images": ood_set.images[torch.as_tensor(job.ood_positions)].numpy(),
              "image_ids": ood_set.image_ids[torch.as_tensor(job.ood_positions)].numpy()}  # for the tiles
    return {"rows": {"ood": out}, "arrays": arrays, "seconds": {"ood": time.perf_counter() - t}}


# unit -> function computing a part's tables ("rows"), arrays and timings ("seconds").
UNITS = {"data": compute_data, "clean": compute_clean, "attack": compute_attack, "activations": compute_activations,
         "features": compute_features, "survival": compute_survival, "ood": compute_ood}
