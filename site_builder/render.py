"""Jinja2 rendering: autoescaped templates, formatting filters, and chart specs embedded as inert JSON."""
from __future__ import annotations

import base64
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any

import altair as alt
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from compute.contract import PALETTE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "static"

# Characters that could end a <script> element or start markup, and JS line terminators.
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(data: Any) -> Markup:
    """JSON safe to place inside ``<script type="application/json">``: no data can close the element."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return Markup(text)


def packed(data: Any) -> str:
    """``data`` as canonical JSON, raw-deflated (zlib level 9) and base64-encoded: what
    ``robustviz.unpack`` in static/site.js turns back into the same data (the browser's
    DecompressionStream). Pages and data files are opened from disk, where no server compresses
    them; this keeps the full test set's site within a free host's limits."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: no zlib header
    return base64.b64encode(squeeze.compress(text.encode("utf-8")) + squeeze.flush()).decode("ascii")


def unpacked(text: str) -> Any:
    """The inverse of ``packed`` (for tests and scripts reading a built site)."""
    return json.loads(zlib.decompress(base64.b64decode(text), -15).decode("utf-8"))


def compact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Store each inline dataset by columns ({"columns": {name: [values]}}) instead of one JSON object
    per row, then packed ({"packed": packed(columns)}): static/site.js unpacks it and turns it back
    into rows before Vega sees it (Vega's own CSV reader would need eval, which the CSP forbids)."""
    for name, rows in list(spec.get("datasets", {}).items()):
        if rows and isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
            keys = list(rows[0])
            if all(list(r) == keys for r in rows):
                spec["datasets"][name] = {"packed": packed({k: [r[k] for r in rows] for k in keys})}
    return spec


# Every chart's axes: a tick label that would come within 4 px of the one before it is hidden (Vega
# hides every other label until none does), so that narrow plots and dense binned axes stay legible.
AXIS_CONFIG = {"labelOverlap": True, "labelSeparation": 4}


def with_site_config(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the site's axis defaults (AXIS_CONFIG) under any the chart sets itself."""
    config = spec.setdefault("config", {})
    config["axis"] = {**AXIS_CONFIG, **config.get("axis", {})}
    return spec


def chart_json(chart: alt.TopLevelMixin) -> Markup:
    """The chart's Vega-Lite spec with the site's axis defaults, compacted, for a page's script tag. Not
    validated against the schema here (a fifth of the build's time): the suite builds every dashboard
    with validation on."""
    return script_json(compact_spec(with_site_config(chart.to_dict(validate=False))))


_ABSOLUTE = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\)")  # POSIX, home, Windows drive, UNC


def _short_path(text: str) -> str:
    """``text`` if it is not an absolute path, else "…/" and its last component ("…" for a root)."""
    if "=" in text and text.startswith("-"):  # --out=/abs/path
        flag, _, value = text.partition("=")
        return f"{flag}={_short_path(value)}"
    if not _ABSOLUTE.match(text):
        return text
    name = re.split(r"[\\/]", text.rstrip("/\\"))[-1]
    return f"…/{name}" if name else "…"


def without_local_paths(value: Any) -> Any:
    """``value`` (JSON-like) with every absolute path of the machine that ran it shortened to its last
    component, so that a published page names no folder of that machine."""
    if isinstance(value, str):
        return _short_path(value)
    if isinstance(value, dict):
        return {k: without_local_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_local_paths(v) for v in value]
    return value


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def count(value: float | None) -> str:
    """A count as a whole number ("485", never "485.0")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{int(round(float(value))):,}"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def pretty_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


# Only the site's own files: scripts from static/ and the run's data/ (no inline or eval'd code: Vega
# runs its expression interpreter), inline styles (tile positions, Vega's embed menu), images from
# the site or drawn in the page, nothing from the network.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; object-src 'none'")


def palette_css() -> str:
    """The palette's outcome colours as CSS custom properties (``--outcome-fooled``...), for the
    stylesheet: the one palette, defined in compute/contract.py, reaches CSS, charts and JS alike."""
    return "".join(f"--outcome-{name.replace(' ', '-')}:{colour};" for name, colour in PALETTE["outcome"].items())


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, num=num, count=count, seconds=seconds, pretty_json=pretty_json,
                       tojson_script=script_json)
    env.globals["csp"] = CSP
    env.globals["palette_css"] = palette_css()
    return env
