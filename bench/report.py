"""The science tables of docs/benchmarks.md, printed as Markdown from a finished run's Parquet tables.

    .venv/bin/python bench/report.py --results build/results/mnist-sample

Per model: detection AUROC [95% interval] of every positive set (each attack's operating points and
budgets, and their noise controls) for every score; and the attack summary (success, distortion,
uncertainty). Every figure is read from the tables, nothing is recomputed.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

SCORES = ("entropy", "mutual_info", "max_prob", "variation_ratio")
HEAD = {"entropy": "entropy", "mutual_info": "mutual information", "max_prob": "max_prob (baseline)",
        "variation_ratio": "variation ratio"}


def positives(row: pd.Series) -> str:
    what = f"{row['noise_of']}" if row["attack"] == "noise" else row["attack"]
    point = f"ε = {row['eps']:g}" if row["operating_point"] == "budget" else row["operating_point"]
    return f"{'noise ~ ' if row['attack'] == 'noise' else ''}{what} {point}"


def detection(results: Path) -> None:
    d = pd.read_parquet(results / "detection.parquet")
    for p, per_model in d.groupby("model", sort=False):
        print(f"\n**Model {p}** (negatives: N = {int(per_model['n_clean'].iloc[0])} clean-correct images)\n")
        print("| positives | N | " + " | ".join(HEAD[s] for s in SCORES) + " |")
        print("| --- | ---: |" + " ---: |" * len(SCORES))
        keys = ["attack", "operating_point", "eps", "noise_of"]
        per_model = per_model.assign(eps=per_model["eps"].fillna(-1.0), noise_of=per_model["noise_of"].fillna(""))
        order = []
        for _, r in per_model.drop_duplicates(keys).iterrows():
            owner = r["noise_of"] or r["attack"]
            order.append((owner, r["operating_point"] != "minimal", r["operating_point"] == "budget", r["eps"],
                          r["attack"] == "noise", tuple(r[k] for k in keys)))
        attack_rank = {a: k for k, a in enumerate(dict.fromkeys(per_model.loc[per_model["attack"] != "noise", "attack"]))}
        for *_, key in sorted(order, key=lambda o: (attack_rank.get(o[0], 99), *o[1:5])):
            rows = per_model[(per_model[keys] == pd.Series(key, index=keys)).all(axis=1)].set_index("score")
            first = rows.iloc[0].copy()
            first["eps"] = math.nan if first["eps"] < 0 else first["eps"]
            cells = [f"{rows.loc[s, 'auroc']:.3f} [{rows.loc[s, 'auroc_low']:.3f}, {rows.loc[s, 'auroc_high']:.3f}]"
                     if s in rows.index else "–" for s in SCORES]
            print(f"| {positives(first)} | {int(first['n_adv'])} | " + " | ".join(cells) + " |")


def attacks(results: Path) -> None:
    s = pd.read_parquet(results / "attack_summary.parquet")
    for p, per_model in s.groupby("model", sort=False):
        print(f"\n**Model {p}**\n")
        print("| attack | operating point | attacked (wrong before) | success | mean L2 | mean L∞ | "
              "mean entropy clean → adversarial | MC passes fooled |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in per_model.itertuples():
            print(f"| {r.attack} | {r.operating_point} | {r.n_attacked} ({r.n_wrong_before}) | {r.success_rate:.1%} | "
                  f"{r.mean_l2:.2f} | {r.mean_linf:.3f} | {r.mean_entropy_clean:.3f} → {r.mean_entropy:.3f} | "
                  f"{r.mean_fooled_share:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    args = parser.parse_args()
    manifest = json.loads((args.results / "manifest.json").read_text())
    models = ", ".join(f"{m['key']}: {m['accuracy']:.1%}" for m in manifest["models"])
    print(f"{args.results}: {manifest['dataset']['n_test_images']} test images; clean accuracy (dropout off) {models}")
    print("\n### Detection AUROC [95% bootstrap interval]")
    detection(args.results)
    print("\n### Attacks (8-bit adversarials)")
    attacks(args.results)


if __name__ == "__main__":
    main()
