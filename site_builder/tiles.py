"""Where a tile sits in its sprite sheet, for the pages: the one place in Python that turns a
table's (sheet, sheet_col, sheet_row) into what a page draws. static/site.js has the one JS helper
(``robustviz.tile``) that does the same in the browser.

Sheets are laid out in the images table's order (docs/data-contract.md, "Tiles"), so the per-image
view needs only each image's position and the list of sheets of each kind (``layout``).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .load import ResultsError, Run


def tile(sheet: str, sheet_col: int, sheet_row: int, width: int, height: int) -> dict[str, Any]:
    """A tile as the tile macro (templates/macros.html) draws it: sheet URL relative to the run's
    folder, size and CSS background position."""
    return {"sheet": f"tiles/{sheet}", "width": int(width), "height": int(height),
            "position": f"-{int(sheet_col) * int(width)}px -{int(sheet_row) * int(height)}px"}


def image_tile(run: Run, row: Any) -> dict[str, Any]:
    """The tile of a row of the images or tiles table (an original or an adversarial)."""
    size = run.manifest["tiles"]
    return tile(row["sheet"], row["sheet_col"], row["sheet_row"], size["tile_width"], size["tile_height"])


def layout(run: Run) -> dict[str, Any]:
    """Sheets of every tile kind, checked to share one regular layout: the image at position i of
    the images table sits at sheet i // per_sheet, column (i % per_sheet) % cols, row ... // cols."""
    w = run.manifest["tiles"]["tile_width"]
    cols = int(run.manifest["tiles"]["sheet_cols"])
    per_sheet = cols * cols
    sheets_of = lambda frame: sorted(frame["sheet"].unique().tolist())  # noqa: E731
    pos = pd.Series(range(len(run.images)), index=run.images["image_id"].to_numpy())
    out: dict[str, Any] = {"cols": cols, "per_sheet": per_sheet, "width": w,
                           "height": run.manifest["tiles"]["tile_height"], "original": sheets_of(run.images),
                           "attacks": [{} for _ in run.model_keys]}

    count = len(sheets_of(run.images))

    def every_sheet(frame: pd.DataFrame) -> list[str]:
        """All sheets of a kind, also those holding no image of it (an attack on a subset, noise
        controls of successes only): sheets are named <kind>-NNN.<ext> in image order."""
        stem, ext = frame["sheet"].iloc[0].rsplit("-", 1)
        return [f"{stem}-{k:03d}.{ext.split('.', 1)[1]}" for k in range(count)]

    def check(frame: pd.DataFrame, what: str) -> None:
        i = pos.loc[frame["image_id"].to_numpy()].to_numpy()
        sheets = every_sheet(frame)
        expected_sheet = [sheets[k] for k in i // per_sheet]
        ok = ((frame["sheet_col"].to_numpy() == (i % per_sheet) % cols) &
              (frame["sheet_row"].to_numpy() == (i % per_sheet) // cols) &
              (frame["sheet"].to_numpy() == expected_sheet))
        if not ok.all():
            raise ResultsError(f"tiles of {what} in {run.path} are not laid out in image order; "
                               f"re-run `robustviz compute`")

    check(run.images, "the original images")
    for (key, attack, point, picture), frame in run.tiles.groupby(["model", "attack", "operating_point", "picture"],
                                                                sort=True):
        check(frame, f"{picture} {key} {attack} {point}")
        out["attacks"][run.model_keys.index(key)].setdefault(attack, {}).setdefault(point, {})[picture] = \
            every_sheet(frame)
    return out
