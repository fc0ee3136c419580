"""Image tiles packed into sprite sheets: a few files for thousands of images.

A sheet is a grid of ``cols x cols`` tiles; a tile is addressed by (sheet, sheet_col, sheet_row).
Greyscale sheets are PNG (lossless, small for digits); colour sheets are WebP.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

SHEET_PIXELS = 1024  # a sheet is at most about this many pixels wide and high


def sheet_cols(tile_width: int) -> int:
    """Tiles per sheet row (and column) for tiles ``tile_width`` pixels wide."""
    return int(np.clip(SHEET_PIXELS // max(tile_width, 1), 1, 32))


def sheet_format(channels: int) -> str:
    return "png" if channels == 1 else "webp"


def write_sheets(images: np.ndarray, directory: str | Path, kind: str) -> dict[str, list]:
    """Pack uint8 ``images`` (N, C, H, W) into sheets ``<directory>/<kind>-NNN.<ext>``.

    Returns the columns ``sheet`` (file name relative to ``directory``), ``sheet_col`` and
    ``sheet_row`` for each image, in input order. Writes are atomic (temp name, then rename).
    """
    n, c, h, w = images.shape
    cols = sheet_cols(w)
    per_sheet = cols * cols
    ext = sheet_format(c)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, list] = {"sheet": [], "sheet_col": [], "sheet_row": []}
    for first in range(0, n, per_sheet):
        chunk = images[first:first + per_sheet]
        rows = -(-len(chunk) // cols)
        canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
        for k, tile in enumerate(chunk):
            r, q = divmod(k, cols)
            canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = tile.transpose(1, 2, 0)
            out["sheet_col"].append(q)
            out["sheet_row"].append(r)
        name = f"{kind}-{first // per_sheet:03d}.{ext}"
        out["sheet"] += [name] * len(chunk)
        picture = Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)
        tmp = directory / (name + ".tmp")
        if ext == "png":
            picture.save(tmp, format="PNG", optimize=True)
        else:
            picture.save(tmp, format="WEBP", quality=90, method=4)
        os.replace(tmp, directory / name)
    return out
