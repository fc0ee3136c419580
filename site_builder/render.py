"""Jinja2 rendering: autoescaped templates, formatting filters, and chart specs embedded as inert JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import altair as alt
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

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


def _csv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if any(c in text for c in ',"\n\r') or text != text.strip():
        text = '"' + text.replace('"', '""') + '"'
    return text


def _as_csv(rows: list[dict[str, Any]]) -> tuple[str, dict[str, str]] | None:
    """Rows of flat scalars as CSV text and Vega parse directives; None if they do not fit."""
    if not rows or not all(isinstance(r, dict) for r in rows):
        return None
    columns = list(rows[0])
    parse: dict[str, str] = {}
    for col in columns:
        kinds = {type(r.get(col)) for r in rows} - {type(None)}
        if kinds <= {bool}:
            parse[col] = "boolean"
        elif kinds <= {int, float}:
            parse[col] = "number"
        elif kinds != {str}:
            return None
    if any(list(r) != columns for r in rows):
        return None
    lines = [",".join(_csv_cell(c) for c in columns)]
    lines += [",".join(_csv_cell(r[c]) for c in columns) for r in rows]
    return "\n".join(lines), parse


def _attach_format(node: Any, formats: dict[str, dict[str, Any]]) -> None:
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and data.get("name") in formats:
            data["format"] = formats[data["name"]]
        for value in node.values():
            _attach_format(value, formats)
    elif isinstance(node, list):
        for value in node:
            _attach_format(value, formats)


def compact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Store each inline dataset as CSV text with explicit types instead of one JSON object per row:
    the same data in about half the bytes (keys are not repeated). Columns not typed stay strings,
    so class names such as "3" are never read as numbers."""
    formats = {}
    for name, rows in list(spec.get("datasets", {}).items()):
        packed = _as_csv(rows)
        if packed is not None:
            spec["datasets"][name], parse = packed
            formats[name] = {"type": "csv", "parse": parse}
    _attach_format(spec, formats)
    return spec


def chart_json(chart: alt.TopLevelMixin) -> Markup:
    return script_json(compact_spec(chart.to_dict()))


def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def megabytes(value: int) -> str:
    return f"{value / 1e6:.1f} MB"


def pretty_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, num=num, seconds=seconds, megabytes=megabytes, pretty_json=pretty_json,
                       tojson_script=script_json)
    return env
