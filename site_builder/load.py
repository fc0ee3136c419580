"""Read a results directory (manifest + Parquet tables), checking it is complete and unaltered.

The site builder reads only these files: it never imports torch or the compute stage.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SUPPORTED_SCHEMA = 5
TABLES = ("images", "uncertainty", "metrics", "calibration", "attacks", "tiles", "activations", "attack_summary",
          "robustness", "success_rates", "detection", "roc", "risk_coverage", "embedding", "neighbours")


POINTS = ("minimal", "confident")  # the operating points with tiles and a per-image view


def condition(attack: str, operating_point: str, noise: bool = False) -> str:
    """The uncertainty table's condition of an attack's minimal or confident adversarial (or its noise
    control): the rows carry it as a column, so this only names what the per-image view lists."""
    base = attack if operating_point == "minimal" else f"{attack}-{operating_point}"
    return f"noise-{base}" if noise else base


class ResultsError(RuntimeError):
    """A results directory cannot be built from; the message says why and what to do."""


@dataclass(frozen=True)
class Run:
    """One results directory: its manifest and tables."""

    path: Path
    manifest: dict
    images: pd.DataFrame
    uncertainty: pd.DataFrame
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    attacks: pd.DataFrame
    tiles: pd.DataFrame
    activations: pd.DataFrame
    attack_summary: pd.DataFrame
    robustness: pd.DataFrame
    success_rates: pd.DataFrame
    detection: pd.DataFrame
    roc: pd.DataFrame
    risk_coverage: pd.DataFrame
    embedding: pd.DataFrame
    neighbours: pd.DataFrame

    @property
    def name(self) -> str:
        return str(self.manifest["run"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["dataset"]["class_names"])

    @property
    def dropout_ps(self) -> list[float]:
        return sorted(float(m["dropout_p"]) for m in self.manifest["models"])

    @property
    def conditions(self) -> list[str]:
        """What the per-image view shows MC dropout of: "clean", then per attack and tiled operating
        point (minimal, confident) the adversarial and its noise control."""
        return ["clean", *[name for a, point in self.attack_points for name in (condition(a, point),
                                                                                condition(a, point, True))]]

    @property
    def attack_points(self) -> list[tuple[str, str]]:
        """(attack, operating point) of every tiled adversarial, attack by attack."""
        return [(a, point) for a in self.attack_names for point in POINTS]

    def model(self, p: float) -> dict:
        """The manifest's entry of the model with dropout rate ``p``."""
        return next(m for m in self.manifest["models"] if float(m["dropout_p"]) == p)

    @property
    def attack_names(self) -> list[str]:
        """Attacks of this run, in the order they were configured."""
        return list(self.manifest.get("attacks", {}).get("enabled", []))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_run(path: str | Path) -> Run:
    """Load ``results/<run>/``; raise ResultsError if it is unfinished, altered or of another schema."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not path.is_dir():
        raise ResultsError(f"results directory {path} not found; run `robustviz compute` first "
                           f"(it writes build/results/<run>/)")
    if not manifest_path.is_file():
        raise ResultsError(f"{path} has no manifest.json, so its compute did not finish; "
                           f"re-run `robustviz compute` for this run")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{manifest_path} is not valid JSON ({exc}); re-run `robustviz compute`") from exc
    if manifest.get("schema_version") != SUPPORTED_SCHEMA:
        raise ResultsError(f"{path} uses results schema {manifest.get('schema_version')}, this builder reads "
                           f"schema {SUPPORTED_SCHEMA}; re-run `robustviz compute` with this version")
    frames = {}
    for name in TABLES:
        file = path / f"{name}.parquet"
        if not file.is_file():
            raise ResultsError(f"{file} is missing; re-run `robustviz compute`")
        if _sha256(file) != manifest["tables"].get(name):
            raise ResultsError(f"{file} does not match the sha256 in its manifest (changed after compute); "
                               f"re-run `robustviz compute`")
        frames[name] = pd.read_parquet(file)
    return Run(path=path, manifest=manifest, **frames)
