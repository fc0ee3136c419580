"""How faithful the t-SNE map is under each way of fitting it and placing points, on a finished run.

    .venv/bin/python bench/map_fits.py --results build/results/mnist-sample [--reference 1000 2000]

For every model and every attack's confident adversarials (the successes), the share whose 10 nearest
clean test images (own original left out) are mostly of the adversarial class, on the map minus in
feature space (compute/embedding.py's ``faithfulness``), for: t-SNE fitted on the clean test images
(the map before issue 18), and fitted on evenly spaced training images with openTSNE's ``transform``
started at the median or the weighted mean of the nearest fitted points, with or without its
optimisation. Prints a Markdown table (the largest gap per variant over all models and sets) for
docs/benchmarks.md. Needs the run's checkpoints (models/) and parts (parts/).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import assemble, datasets, embedding, parts  # noqa: E402
from compute.contract import CLEAN, CONFIDENT, condition_name  # noqa: E402
from compute.models import load_checkpoint  # noqa: E402
from compute.pipeline import checkpoint_path  # noqa: E402

PLACEMENTS = {"median initialisation": {}, "median initialisation, no optimisation": {"n_iter": 0},
              "weighted initialisation, no optimisation": {"initialization": "weighted", "n_iter": 0},
              "weighted initialisation (the pipeline's)": {"initialization": "weighted"}}


def fit(reference: np.ndarray, components: int, perplexity: float, seed: int):  # noqa: ANN201
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    reduce = PCA(n_components=min(components, *reference.shape), svd_solver="covariance_eigh").fit(reference)
    usable = float(min(perplexity, max((len(reference) - 1) / 3.0 - 1e-6, 1.0)))
    fitted = TSNE(perplexity=usable, neighbors="exact", random_state=seed, n_jobs=2, verbose=False).fit(
        reduce.transform(reference))
    fitted -= (np.max(fitted, axis=0) + np.min(fitted, axis=0)) / 2
    return reduce, fitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    parser.add_argument("--reference", type=int, nargs="+", default=[1000], help="training images to fit on")
    args = parser.parse_args()
    plan = assemble.load_plan(args.results)
    loaded = assemble.Loaded(plan, {p: parts.read_part(args.results / p.path) for p in plan.parts
                                    if p.unit == "features"})
    cfg = loaded.cfg
    train, test = datasets.load(cfg.data)
    labels = pd.Series(test.labels.numpy(), index=test.image_ids.numpy())
    att = pd.read_parquet(args.results / "attacks.parquet")
    gaps: dict[str, list[float]] = {}
    for key in loaded.models:
        model = load_checkpoint(checkpoint_path(cfg, key))
        found = {}
        for unit, c in [(CLEAN, CLEAN)] + [(a, condition_name(a, CONFIDENT)) for a in cfg.attacks.enabled]:
            stored = loaded.shards("features", key, unit)
            found[c] = (np.concatenate([s.arrays[f"image_ids-{c}"] for s in stored]),
                        np.concatenate([s.arrays[f"features-{c}"] for s in stored]).astype(np.float64))
        clean_ids, clean = found.pop(CLEAN)
        clean_labels = labels.loc[clean_ids].to_numpy()
        sets = {}
        for attack in cfg.attacks.enabled:
            ids, x = found[condition_name(attack, CONFIDENT)]
            hit = att[(att["model"] == key) & (att["attack"] == attack) & (att["operating_point"] == CONFIDENT)
                      & att["success"]].set_index("image_id")["adv_pred"]
            fooled = np.isin(ids, hit.index)
            if fooled.any():
                sets[attack] = (ids[fooled], x[fooled], hit.reindex(ids[fooled]).to_numpy())
        truth = {a: embedding.faithfulness(clean, clean_ids, x, ids, t, clean_labels) for a, (ids, x, t) in sets.items()}

        def record(name: str, clean_xy: np.ndarray, place) -> None:  # noqa: ANN001
            for a, (ids, x, t) in sets.items():
                on_map = embedding.faithfulness(clean_xy, clean_ids, place(x), ids, t, clean_labels)
                gaps.setdefault(name, []).append(on_map - truth[a])

        reduce, fitted = fit(clean, cfg.embedding.pca_components, cfg.embedding.perplexity, cfg.seed)
        record("500 clean test images | median initialisation", np.asarray(fitted),
               lambda x: np.asarray(fitted.transform(reduce.transform(x))))
        for count in args.reference:
            pick = embedding.reference_positions(len(train), count)
            reference = embedding.features(model, train.floats(torch.as_tensor(pick))).astype(np.float64)
            reduce, fitted = fit(reference, cfg.embedding.pca_components, cfg.embedding.perplexity, cfg.seed)
            for label, options in PLACEMENTS.items():
                place = (lambda r, f, o: lambda x: np.asarray(f.transform(r.transform(x), **o)))(reduce, fitted, options)
                record(f"{len(pick):,} training images | {label}", place(clean), place)
        print(f"{key} done", file=sys.stderr)
    print("| fit | placement | largest gap (map − features) | sets |")
    print("| --- | --- | ---: | ---: |")
    for name, values in gaps.items():
        worst = max(values, key=abs)
        print(f"| {name} | {worst:+.3f} | {len(values)} |")


if __name__ == "__main__":
    main()
