"""Results in parts: one directory per (shard of images, model, unit, condition), written atomically.

A ``Part`` says what one piece of work reads and where it writes; compute/units.py computes it. Units:
- ``data``: the shard's test images, labels and ids (no model);
- ``clean``: the uncertainty method's passes over the clean images (with the predictions of the model
  with dropout off);
- ``attack``: one attack (``condition`` names it): its attacks-table rows, the passes over every set of
  images it made (operating points, budgets, noise controls), and the minimal and confident
  adversarials as uint8;
- ``activations``: feature maps of the shard's selected images under ``condition`` (clean or an
  attack); it reads the ranking part (the ranking attack's minimal rows pick the images) and, for an
  attack, the part holding the adversarials;
- ``features``: penultimate features (compute/embedding.py) of the shard's clean images or, for an
  attack, of its minimal and confident adversarials (read from ``source``), for the feature maps built
  at assembly;
- ``survival``: an attack's minimal and confident adversarials (read from ``source``) judged afresh:
  do they still fool after JPEG, noise and a median filter, and on every other model of the run
  (compute/survival.py)?
- ``ood``: the uncertainty method's passes over the shard's share of the out-of-distribution images
  (compute/ood.py; whole MC batches, cut in order).
Each part is keyed by the sha256 of what it depends on (the shard's data, the model's weights, the
config it uses, the parts' format version), so a re-run reuses every part whose inputs did not change. A
part is written into a temporary directory and renamed into place: it exists whole or not at all.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import tables

PARTS_DIR = "parts"
PLAN_FILE = "plan.json"
UNITS = ("data", "clean", "attack", "activations", "features", "survival", "ood")
# The parts' own format: part keys depend on it, not on the results' schema version, so a change to
# the final tables alone reuses every computed part.
PARTS_VERSION = 7


class ShardError(ValueError):
    """A --shard value is malformed."""


@dataclass(frozen=True)
class Part:
    """One part of the plan; every input it reads is a field."""

    shard: int  # 0-based shard index
    model: str | None  # the model's key; None for the data part
    unit: str  # one of UNITS
    condition: str | None  # "clean" or an attack name (the images the part is about); None for data
    key: str  # sha256 of the part's inputs
    path: str  # its directory, relative to the results directory
    ranking: str | None = None  # activations: the ranking attack's part, whose rows select the images (None: ids only)
    source: str | None = None  # activations or features of an attack: the part holding its adversarials

    def done(self, results: Path) -> bool:
        return (results / self.path).is_dir()


@dataclass(frozen=True)
class Plan:
    """Every part of every shard, and the run's metadata (what the manifest reports about it)."""

    shards: int
    run: dict[str, Any]  # schema_version, run, config, attacks, dataset, models, device, versions
    parts: tuple[Part, ...]

    def find(self, unit: str, model: str | None, condition: str | None, shard: int) -> Part:
        return next(p for p in self.parts if (p.unit, p.model, p.condition, p.shard) ==
                    (unit, model, condition, shard))

    def shard_parts(self, unit: str, model: str | None, condition: str | None) -> list[Part]:
        """The part of every shard, in shard order."""
        return [self.find(unit, model, condition, k) for k in range(self.shards)]

    def write(self, results: Path) -> None:
        (results / PARTS_DIR).mkdir(parents=True, exist_ok=True)
        tables.write_json({"shards": self.shards, "run": self.run,
                           "parts": [dataclasses.asdict(p) for p in self.parts]}, results / PARTS_DIR / PLAN_FILE)

    @staticmethod
    def read(results: Path) -> Plan | None:
        path = results / PARTS_DIR / PLAN_FILE
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return Plan(data["shards"], data["run"], tuple(Part(**p) for p in data["parts"]))


def parse_shard(text: str | None) -> tuple[int, int]:
    """"K/N" (1-based K) -> (K - 1, N); None -> the whole set (0, 1)."""
    if text is None:
        return 0, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError as exc:
        raise ShardError(f"--shard must look like K/N, e.g. 2/3 (shard 2 of 3), got {text!r}") from exc
    if not 1 <= k <= n:
        raise ShardError(f"--shard {text}: K must lie between 1 and N")
    return k - 1, n


def shard_positions(count: int, shard: int, shards: int, block: int) -> np.ndarray:
    """Positions of the test images in ``shard`` of ``shards``: contiguous, disjoint, covering all.

    Shards are cut only at multiples of ``block`` (a multiple of every batch size), so each image
    meets exactly the same batch mates as in an unsharded run: float results then agree to the
    last bit, not merely to rounding.
    """
    blocks = -(-count // block)
    if shards > blocks:
        raise ShardError(f"{shards} shards for {count} images in batches of {block}: use at most {blocks} shards, "
                         f"or smaller attacks.batch_size / uncertainty.batch_size")
    mine = np.array_split(np.arange(blocks), shards)[shard]
    return np.arange(mine[0] * block, min((mine[-1] + 1) * block, count))


def key(**deps: Any) -> str:
    """sha256 of the dependencies, as canonical JSON."""
    return hashlib.sha256(json.dumps(deps, sort_keys=True, default=str).encode()).hexdigest()


def data_fingerprint(images: np.ndarray, labels: np.ndarray, ids: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in (images, labels, ids):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def part_path(model: str | None, unit: str, condition: str | None, shard: int, shards: int, digest: str) -> str:
    """parts/<model key|data>/<data|clean|attack name|activations-condition|features-condition>/shard-<k>of<N>-<key>."""
    folder = f"{unit}-{condition}" if unit in ("activations", "features", "survival") else condition or unit
    return f"{PARTS_DIR}/{model or 'data'}/{folder}/shard-{shard + 1}of{shards}-{digest[:16]}"


@dataclass(frozen=True)
class Stored:
    """What a part directory holds."""

    tables: dict[str, pd.DataFrame]
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def write_part(path: Path, rows: dict[str, dict[str, list]], arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write a part atomically: everything goes to a temporary directory that is renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, columns in rows.items():
        tables.write_table(columns, name, tmp)
    if arrays:
        np.savez(tmp / "arrays.npz", **arrays)  # uncompressed: compressing took longer than computing small parts
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    if path.exists():  # an identical part written by a concurrent run of the same shard
        shutil.rmtree(tmp, ignore_errors=True)
        return
    os.replace(tmp, path)


def read_part(path: Path) -> Stored:
    frames = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))}
    arrays = {}
    if (path / "arrays.npz").is_file():
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
    return Stored(frames, arrays, json.loads((path / "meta.json").read_text()))


def clean_stale(results: Path, keep: set[Path]) -> int:
    """Remove part directories (and leftovers of interrupted writes) that no plan uses; returns how many."""
    root = results / PARTS_DIR
    removed = 0
    if not root.is_dir():
        return 0
    for path in sorted(root.glob("*/*/*")):
        if path.is_dir() and path not in keep and (path.name.startswith(".") or path.name.startswith("shard-")):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
