"""Do the shown adversarials fool the model? Cut every adversarial tile of an image an attack reports
as successful out of the run's sprite sheets, run it through the run's own checkpoint (dropout off),
and count how many are misclassified. Also checks that no image wrong before the attack is a success.

    .venv/bin/python bench/verify_adversarials.py --results build/results/mnist-sample

Greyscale (PNG) sheets only: they are lossless, as DESIGN asks of every adversarial tile.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute.models import load_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    args = parser.parse_args()
    manifest = json.loads((args.results / "manifest.json").read_text())
    w, h = manifest["tiles"]["tile_width"], manifest["tiles"]["tile_height"]
    attacks = pd.read_parquet(args.results / "attacks.parquet")
    tiles = pd.read_parquet(args.results / "tiles.parquet")
    images = pd.read_parquet(args.results / "images.parquet").set_index("image_id")
    minimal = attacks[attacks["minimal"]]
    print(f"wrong before the attack but counted as a success: {int((attacks['success'] & ~attacks['clean_correct']).sum())} rows")
    print("| model | attack | successes | shown adversarial misclassified |\n| --- | --- | ---: | ---: |")
    for m in manifest["models"]:
        p = m["dropout_p"]
        model = load_checkpoint(args.results / m["checkpoint"]).eval()
        for attack in manifest["attacks"]["enabled"]:
            hit = minimal[(minimal["dropout_p"] == p) & (minimal["attack"] == attack) & minimal["success"]]
            where = tiles[(tiles["dropout_p"] == p) & (tiles["attack"] == attack) & (tiles["picture"] == "adversarial")]
            where = where.set_index("image_id").loc[hit["image_id"]]
            sheets = {name: np.asarray(Image.open(args.results / "tiles" / name)) for name in where["sheet"].unique()}
            cut = np.stack([sheets[r.sheet][r.sheet_row * h:(r.sheet_row + 1) * h, r.sheet_col * w:(r.sheet_col + 1) * w]
                            for r in where.itertuples()])
            x = torch.from_numpy(cut).float().div(255).unsqueeze(1)
            with torch.no_grad():
                pred = model(x).argmax(1).numpy()
            wrong = pred != images.loc[hit["image_id"], "label"].to_numpy()
            print(f"| p = {p:g} | {attack} | {len(hit)} | {wrong.mean():.2%} |")


if __name__ == "__main__":
    main()
