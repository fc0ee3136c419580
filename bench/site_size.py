"""Size and file count of a site for the full MNIST test set (10,000 images, 3 models, 3 attacks).

    .venv/bin/python bench/site_size.py --results build/results/mnist-sample --copies 10

Full MNIST cannot be downloaded here, so this replicates a real results directory ``--copies``
times under new image ids: every table row and every tile (originals, adversarials, heatmaps,
re-packed into new sprite sheets) is real content from the demo's attacks. Activation maps stay
as they are, since they cover a fixed number of images per class. Then it builds the site with
the real builder and reports its size and file count.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from compute import tables, tiles  # noqa: E402
from site_builder.build import build_site  # noqa: E402


def cut(directory: Path, frame: pd.DataFrame, w: int, h: int) -> np.ndarray:
    """The tiles of ``frame``'s rows (sheet, sheet_col, sheet_row) as (N, C, h, w) uint8 (palette
    sheets give their palette indices)."""
    sheets = {name: np.asarray(Image.open(directory / name)) for name in frame["sheet"].unique()}
    out = []
    for r in frame.itertuples():
        a = sheets[r.sheet][r.sheet_row * h:(r.sheet_row + 1) * h, r.sheet_col * w:(r.sheet_col + 1) * w]
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(out)


def replicate(source: Path, target: Path, copies: int) -> None:
    manifest = json.loads((source / "manifest.json").read_text())
    w, h = manifest["tiles"]["tile_width"], manifest["tiles"]["tile_height"]
    frames = {name: pd.read_parquet(source / f"{name}.parquet") for name in tables.SCHEMAS}
    stride = int(frames["images"]["image_id"].max()) + 1
    grow = lambda f: pd.concat([f.assign(image_id=f["image_id"] + k * stride) for k in range(copies)],  # noqa: E731
                               ignore_index=True)
    (target / "tiles").mkdir(parents=True)
    images = grow(frames["images"])
    originals = np.concatenate([cut(source / "tiles", frames["images"], w, h)] * copies)
    images[["sheet", "sheet_col", "sheet_row"]] = pd.DataFrame(tiles.write_sheets(originals, target / "tiles", "images"))
    parts = []
    position = pd.Series(np.arange(len(frames["images"])), index=frames["images"]["image_id"])
    for (p, attack, point, picture), f in frames["tiles"].groupby(["dropout_p", "attack", "operating_point", "picture"],
                                                                   sort=True):
        # Sheets hold every image in image order; an image without this picture gets a blank tile.
        f = f.sort_values("image_id", key=lambda ids: ids.map(position)).reset_index(drop=True)
        one = np.zeros((len(position), *originals.shape[1:]), dtype=np.uint8)
        one[position[f["image_id"]].to_numpy()] = cut(source / "tiles", f, w, h)
        pics = np.concatenate([one] * copies)
        palette = tiles.heat_palette() if picture == "heatmap" else None
        placed = pd.DataFrame(tiles.write_sheets(pics, target / "tiles", f"{picture}-p{p:g}-{tables.condition_name(attack, point)}",
                                                 "png" if palette else None, palette))
        g = grow(f)
        at = np.concatenate([position[f["image_id"]].to_numpy() + k * len(position) for k in range(copies)])
        g[["sheet", "sheet_col", "sheet_row"]] = placed.iloc[at].to_numpy()
        parts.append(g)
    for path in (source / "tiles").glob("activations-*"):
        shutil.copy(path, target / "tiles" / path.name)
    # Run-level tables (metrics, summaries) are kept as they are: their size does not grow with the images.
    out = {**frames, "images": images, "tiles": pd.concat(parts, ignore_index=True),
           "uncertainty": grow(frames["uncertainty"]), "attacks": grow(frames["attacks"])}
    manifest["tables"] = {name: tables.write_table(frame, name, target) for name, frame in out.items()}
    manifest["dataset"]["test_images"] = len(images)
    tables.write_json(manifest, target / "manifest.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("build/results/mnist-sample"))
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "results" / args.results.name
        replicate(args.results, target, args.copies)
        report = build_site([target], Path(tmp) / "site")
        largest = sorted(((f.stat().st_size, str(f.relative_to(Path(tmp) / "site")))
                          for f in (Path(tmp) / "site").rglob("*") if f.is_file()), reverse=True)[:5]
        kinds: dict[str, int] = {}
        for f in (Path(tmp) / "site").rglob("*"):
            if f.is_file():
                key = f.parent.name if f.parent.name in ("tiles", "data", "static") else "pages"
                kinds[key] = kinds.get(key, 0) + f.stat().st_size
    print(f"site for {args.copies} x the images of {args.results}: {report.files} files, "
          f"{report.bytes / 1e6:.1f} MB ({report.pages} pages)")
    print("by kind: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(kinds.items())))
    print("largest: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for size, name in largest))


if __name__ == "__main__":
    main()
