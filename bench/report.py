"""The science tables of docs/benchmarks.md, printed as Markdown from one finished run's tables.

    .venv/bin/python bench/report.py --results build/results/mnist-sample

Every figure is read from the run's Parquet tables and manifest; nothing is recomputed, and the
detection answer is the site's own (site_builder.pages.detection_answer). Sections: accuracy, the
detection answer per model, the adaptive attacker against its baseline, the references of every
adversarial set, the matched noise controls of sparse attacks, risk-coverage, the feature map's
faithfulness, the attacks, and the run's stage timings.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from site_builder.pages import detection_answer  # noqa: E402

POINTS = {"minimal": 0, "confident": 1, "budget": 2}


def ci(value: float, low: float, high: float, digits: int = 3, sign: bool = False) -> str:
    f = f"+.{digits}f" if sign else f".{digits}f"
    return f"{value:{f}} [{low:{f}}, {high:{f}}]".replace("-", "−")


def table(header: list[str], rows: list[list], align: str | None = None) -> None:
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join((align or "l" + "r" * (len(header) - 1))[k] == "r" and "---:" or "---"
                             for k in range(len(header))) + " |")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()


def set_name(labels: dict[str, str], attack: str, point: str, eps: float) -> str:
    return f"{labels[attack]} " + (f"ε = {eps:g}" if point == "budget" else point)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    args = parser.parse_args()
    r = args.results
    manifest = json.loads((r / "manifest.json").read_text())
    read = {name: pd.read_parquet(r / f"{name}.parquet") for name in
            ("metrics", "detection", "adaptive", "attacks", "attack_summary", "risk_coverage", "map_faithfulness")}
    labels = {a: c["label"] for a, c in manifest["attacks"]["cards"].items()}
    models = [m["key"] for m in manifest["models"]]
    n_test = manifest["dataset"]["n_test_images"]

    print(f"### Accuracy ({n_test} test images)\n")
    met = read["metrics"]
    overall = met[met["class_name"].isna() & (met["condition"] == "clean")].set_index("model")
    table(["model", "clean accuracy (dropout off)", "MC accuracy [Wilson 95%]", "ECE", "NLL"],
          [[m["key"], f"{m['accuracy']:.1%}",
            ci(overall.loc[m["key"], "accuracy"], overall.loc[m["key"], "accuracy_low"],
               overall.loc[m["key"], "accuracy_high"]),
            f"{overall.loc[m['key'], 'ece']:.4f}", f"{overall.loc[m['key'], 'nll']:.4f}"] for m in manifest["models"]])

    d = read["detection"]
    print("### The answer: does MC dropout flag attacks better than the softmax?\n")
    print("Every adversarial set and MC score, nothing selected; paired image-level bootstrap of "
          "ΔAUROC = AUROC(MC score) − AUROC(max_prob) on the same positives.\n")
    rows = []
    for key in models:
        mine = d[(d["model"] == key) & (d["reference"] == "adversarial") & d["score"].isin(
            ["entropy", "mutual_info", "variation_ratio"]) & (d["n_adv"] > 0) & d["delta_vs_baseline"].notna()]
        above, below = int((mine["delta_low"] > 0).sum()), int((mine["delta_high"] < 0).sum())
        rows.append([key, len(mine), f"{mine['delta_vs_baseline'].min():+.3f} … {mine['delta_vs_baseline'].max():+.3f}"
                     .replace("-", "−"), above, below, len(mine) - above - below, detection_answer(d, key)[0]])
    table(["model", "pairs", "Δ from … to", "interval above 0", "below 0", "contains 0", "answer"], rows)

    a = read["adaptive"]
    ent = a[a["score"] == "entropy"]
    if len(ent):
        print("### The adaptive attacker against its non-adaptive baseline (entropy)\n")
        table(["model", "attack vs baseline", "ε", "N clean", "successes (attack / baseline)", "AUROC attack",
               "AUROC baseline", "Δ [paired 95%]"],
              [[x.model, f"{labels[x.attack]} vs {labels[x.baseline]}", f"{x.eps:g}", x.n_clean,
                f"{x.n_adv} / {x.n_baseline}", f"{x.auroc:.3f}", f"{x.auroc_baseline:.3f}",
                ci(x.delta, x.delta_low, x.delta_high, sign=True)]
               for x in ent.sort_values(["model", "eps"], ascending=[True, False]).itertuples()])
        top = d[(d["reference"] == "adversarial") & (d["score"] == "entropy") & d["attack"].isin(ent["attack"])
                & (d["operating_point"] == "budget") & (d["eps"] == ent["eps"].max())]
        print("Marginal entropy AUROC of the adaptive attacker at its largest ε: " + "; ".join(
            f"{x.model} {ci(x.auroc, x.auroc_low, x.auroc_high)}" for x in top.itertuples()) + ".\n")

    print("### References of every adversarial set (entropy; AUROC against the same clean-correct negatives)\n")
    for key in models:
        mine = d[(d["model"] == key) & (d["score"] == "entropy") & (d["n_adv"] > 0)
                 & d["operating_point"].isin(["minimal", "confident"])]
        rows = []
        for (attack, point), g in mine.groupby(["attack", "operating_point"], sort=False):
            by = g.set_index("reference")
            adv = by.loc["adversarial"]
            rows.append([set_name(labels, attack, point, float("nan")), int(adv["n_adv"]),
                         ci(adv["auroc"], adv["auroc_low"], adv["auroc_high"]),
                         f"{by.loc['noise', 'auroc']:.3f}" if "noise" in by.index else "–",
                         f"{by.loc['unattacked', 'auroc']:.3f}",
                         ci(adv["gap_vs_noise"], adv["gap_low"], adv["gap_high"], sign=True)])
        print(f"**{key}** (N = {int(mine['n_clean'].max())} clean-correct negatives; an attack on a subset: its own)\n")
        table(["set", "positives", "adversarial [95%]", "noise control", "unattacked", "gap adversarial − noise [95%]"],
              rows)

    att = read["attacks"]
    sparse = [x for x, c in manifest["attacks"]["cards"].items() if c.get("noise") == "sparse"]
    if sparse:
        print("### Matched noise controls of the sparse attacks (medians over the successes)\n")
        rows = []
        for key in models:
            for x in sparse:
                for point in ("minimal", "confident"):
                    hit = att[(att["model"] == key) & (att["attack"] == x) & (att["operating_point"] == point)
                              & att["success"]]
                    rows.append([key, set_name(labels, x, point, float("nan")), len(hit),
                                 f"{hit['l0'].median():.0f} / {hit['noise_l0'].median():.0f}",
                                 f"{hit['l2'].median():.3f} / {hit['noise_l2'].median():.3f}",
                                 f"{hit['linf'].median():.3f} / {hit['noise_linf'].median():.3f}"])
        table(["model", "set", "successes", "L0 adversarial / control", "L2", "L∞"], rows)

    rc = read["risk_coverage"].drop_duplicates(["model", "condition", "score"])
    print(f"### Risk–coverage on the population a deployed model meets "
          f"({manifest['config']['detection']['attacked_share']:.0%} of the images met as their adversarial)\n")
    rows = []
    for key in models:
        mine = rc[rc["model"] == key]
        for condition, g in mine.groupby("condition", sort=False):
            first = g.iloc[0]
            if condition != "clean" and (first["operating_point"] == "minimal"
                                         or (first["operating_point"] == "budget" and first["eps"] != mine["eps"].max())):
                continue
            by = g.set_index("score")
            rows.append([key, condition, int(first["n_images"]), int(first["n_attacked"]), f"{first['random_aurc']:.3f}",
                         ci(by.loc["entropy", "e_aurc"], by.loc["entropy", "e_aurc_low"], by.loc["entropy", "e_aurc_high"], 4),
                         ci(by.loc["max_prob", "e_aurc"], by.loc["max_prob", "e_aurc_low"],
                            by.loc["max_prob", "e_aurc_high"], 4)])
    table(["model", "images", "N", "met attacked", "random AURC", "E-AURC entropy [95%]", "E-AURC max_prob [95%]"], rows)

    mf = read["map_faithfulness"]
    print("### How faithful the feature maps are (share of successful adversarials whose 10 nearest clean test "
          "images, own original left out, are mostly of the adversarial class)\n")
    rows = []
    for key in models:
        mine = mf[(mf["model"] == key) & (mf["n_images"] > 0)]
        for (c, point), g in mine.groupby(["condition", "operating_point"], sort=False):
            by = g.set_index("method")
            rows.append([key, c, int(by.loc["tsne", "n_images"]), f"{by.loc['tsne', 'share_features']:.3f}",
                         f"{by.loc['tsne', 'share_map']:.3f} ({by.loc['tsne', 'share_map'] - by.loc['tsne', 'share_features']:+.3f})",
                         f"{by.loc['pca', 'share_map']:.3f} ({by.loc['pca', 'share_map'] - by.loc['pca', 'share_features']:+.3f})",
                         f"{by.loc['pca', 'explained_variance']:.3f}"])
    table(["model", "set", "successes", "features", "t-SNE (gap)", "PCA (gap)", "PCA explained variance"],
          [[c.replace("-", "−") if isinstance(c, str) and c.startswith("-") else c for c in row] for row in rows])

    s = read["attack_summary"]
    print("### Attacks (8-bit adversarials; rates over the clean-correct images attacked)\n")
    table(["model", "attack", "point", "attacked (wrong before)", "success [Wilson 95%]", "mean L2", "mean L∞",
           "entropy clean → adversarial", "MC passes fooled"],
          [[x.model, labels[x.attack], x.operating_point, f"{x.n_attacked} ({x.n_wrong_before})",
            f"{x.success_rate:.1%} [{x.success_low:.1%}, {x.success_high:.1%}]", f"{x.mean_l2:.3f}",
            f"{x.mean_linf:.3f}", f"{x.mean_entropy_clean:.3f} → {x.mean_entropy:.3f}", f"{x.mean_fooled_share:.0%}"]
           for x in s.itertuples()])

    t = manifest["timings"]
    print("### Stage timings of this run (seconds; the manifest's `timings`)\n")
    stages = {}
    for name, seconds in t.items():
        stage = name.split(" ")[0]
        stages[stage] = stages.get(stage, 0.0) + float(seconds)
    table(["stage", "seconds (all models)"], [[k, f"{v:.1f}"] for k, v in stages.items()])


if __name__ == "__main__":
    main()
