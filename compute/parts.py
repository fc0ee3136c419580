"""Results in parts: one directory per (model, unit, shard of images), written atomically.

A unit is "clean" (MC dropout of the test images), an attack id (its table rows, MC dropout of its
minimal adversarials, and those adversarials as uint8) or "activations-<condition>" (feature maps
of the shard's candidate images). Each part is keyed by the sha256 of what it depends on (the
shard's data, the model's weights, the config it uses, the schema version), so a re-run reuses
every part whose inputs did not change and computes only the rest. A part is written into a
temporary directory and renamed into place: it either exists whole or not at all.
"""
from __future__ import annotations

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


class ShardError(ValueError):
    """A --shard value is malformed."""


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


def part_dir(results: Path, p: float | None, unit: str, shard: int, shards: int, digest: str) -> Path:
    model = "data" if p is None else f"p{p:g}"
    return results / PARTS_DIR / model / unit / f"shard-{shard + 1}of{shards}-{digest[:16]}"


@dataclass(frozen=True)
class Part:
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
        np.savez_compressed(tmp / "arrays.npz", **arrays)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    if path.exists():  # an identical part written by a concurrent run of the same shard
        shutil.rmtree(tmp, ignore_errors=True)
        return
    os.replace(tmp, path)


def read_part(path: Path) -> Part:
    frames = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))}
    arrays = {}
    if (path / "arrays.npz").is_file():
        with np.load(path / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
    return Part(frames, arrays, json.loads((path / "meta.json").read_text()))


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
