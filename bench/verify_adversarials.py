"""Do the shown adversarials fool the model? Cut every adversarial tile of an image an attack reports
as successful (minimal and confident operating points) out of the run's sprite sheets, run it through
the run's own checkpoint (dropout off), and count how many are misclassified, and for the confident
point how many have a wrong class at probability >= kappa. Also checks that no image wrong before the
attack is a success.

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

from compute import config  # noqa: E402
from compute.pixels import to_float  # noqa: E402
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
    kappa = config.from_manifest(manifest).attacks.kappa
    print(f"wrong before the attack but counted as a success: {int((attacks['success'] & ~attacks['clean_correct']).sum())} rows")
    print(f"| model | attack | operating point | successes | shown adversarial misclassified | wrong class at p >= {kappa} |"
          "\n| --- | --- | --- | ---: | ---: | ---: |")
    for m in manifest["models"]:
        p = m["key"]
        model = load_checkpoint(args.results / m["checkpoint"]).eval()
        for attack, point in [(a, o) for a in manifest["attacks"]["enabled"] for o in ("minimal", "confident")]:
            rows = attacks[(attacks["operating_point"] == point) & (attacks["model"] == p)
                           & (attacks["attack"] == attack)]
            hit = rows[rows["success"]]
            where = tiles[(tiles["model"] == p) & (tiles["attack"] == attack) & (tiles["operating_point"] == point)
                          & (tiles["picture"] == "adversarial")]
            where = where.set_index("image_id").loc[hit["image_id"]]
            sheets = {name: np.asarray(Image.open(args.results / "tiles" / name)) for name in where["sheet"].unique()}
            cut = np.stack([sheets[r.sheet][r.sheet_row * h:(r.sheet_row + 1) * h, r.sheet_col * w:(r.sheet_col + 1) * w]
                            for r in where.itertuples()])
            x = to_float(torch.from_numpy(cut)).unsqueeze(1)
            with torch.no_grad():
                probs = torch.softmax(model(x), dim=1)
            wrong = probs.argmax(1).numpy() != images.loc[hit["image_id"], "label"].to_numpy()
            sure = wrong & (probs.amax(1).numpy() >= kappa)
            print(f"| {p} | {attack} | {point} | {len(hit)} | {wrong.mean():.2%} | {sure.mean():.2%} |")


if __name__ == "__main__":
    main()
