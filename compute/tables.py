"""Writing a results directory's files: tables cast to their schema (compute/contract.py), JSON,
both atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .contract import SCHEMAS, file_sha256


def write_table(rows: dict[str, list[Any]] | pd.DataFrame, name: str, directory: str | Path) -> str:
    """Write table ``name`` (columns as lists, or a DataFrame; cast to its schema) atomically;
    returns its sha256."""
    schema = SCHEMAS[name]
    if isinstance(rows, pd.DataFrame):
        if rows.empty:  # a statistic with no rows (a run without attacks) may not even have its columns
            rows = rows.reindex(columns=schema.names)
        table = pa.Table.from_pandas(rows[schema.names], preserve_index=False)
    else:
        table = pa.table({k: rows[k] for k in schema.names})
    table = table.select(schema.names).cast(schema)
    path = Path(directory) / f"{name}.parquet"
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")  # per process: two shards may assemble at once
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return file_sha256(path)


def write_json(data: dict[str, Any], path: str | Path) -> None:
    """Write JSON atomically with sorted keys (stable bytes for the same content)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
