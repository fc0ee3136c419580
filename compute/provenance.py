"""What made a run, for its manifest: when it was assembled, which code made it, and the command.

The code is named by the package version and, when the package runs from a git checkout, the
commit (with ``dirty`` when tracked files differ from it), so a reader can check out what ran.
"""
from __future__ import annotations

import datetime as dt
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

SOURCE = Path(__file__).resolve().parent.parent  # the checkout holding compute/, when there is one


def code_version(source: Path = SOURCE) -> dict[str, Any]:
    """``{"version": ..., "commit": 40 hex digits or None, "dirty": bool or None}``."""
    try:
        version = metadata.version("robustviz")
    except metadata.PackageNotFoundError:
        version = "not installed"
    commit, dirty = None, None
    if (source / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10, check=True).stdout.strip() or None
            status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout
            dirty = bool(status.strip())
        except (OSError, subprocess.SubprocessError):  # no git on this machine: the version alone
            commit, dirty = None, None
    return {"version": version, "commit": commit, "dirty": dirty}


def provenance(command: Sequence[str] | None) -> dict[str, Any]:
    """The manifest's ``provenance``: UTC time of assembly (to the second), the code, and the command
    line that computed the run (None when it was not run from the command line)."""
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {"created": created, "code": code_version(), "command": list(command) if command else None}
