"""Build the static site: a pure function of (results, templates, static).

Every file is rendered in memory first; then the whole tree is written to a temporary folder
beside the target and swapped in, so a failed build leaves the previous site untouched and
building twice gives identical bytes.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import altair as alt

from .load import ResultsError, Run, load_run
from .pages import gather_pages, run_dir
from .render import STATIC_DIR, environment, packed

VEGA_BUNDLE = "static/vega.js"


@dataclass(frozen=True)
class BuildReport:
    runs: int
    pages: int
    files: int
    bytes: int


_MADE: list[bytes] = []  # the bundle, once this process has made it


def vega_bundle() -> bytes:
    """Vega, Vega-Lite and Vega-Embed as one classic script from vl-convert, matching Altair's
    Vega-Lite version; it defines ``window.vegaEmbed`` and ``window.vega`` for site.js."""
    import vl_convert

    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    available = vl_convert.get_vegalite_versions()
    if major_minor not in available:
        raise ResultsError(f"vl-convert-python offers Vega-Lite {available}, but Altair writes {major_minor}; "
                           f"upgrade vl-convert-python")
    js = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed; window.vega = vega;", vl_version=major_minor)
    return js.encode("utf-8")


def render_files(runs: list[Run]) -> dict[str, bytes]:
    """Every file of the site, by relative path."""
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ResultsError(f"two results directories are both named run {dup!r}; give runs distinct names")
    env = environment()
    files: dict[str, bytes] = {}
    # vl-convert makes the bundle (1.3 s, holding the GIL) in a process of its own while the pages are
    # gathered here, the first time this process builds; later builds reuse it.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        bundle = None if _MADE else pool.submit(vega_bundle)
        # Every chart's data is inlined (nothing can be fetched from file://); a full test set passes
        # Altair's 5,000-row guard, so it is lifted while this build renders, and only then.
        with alt.data_transformers.disable_max_rows():
            pages, data = gather_pages(runs)
        if bundle is not None:
            _MADE.append(bundle.result())
    for page in pages:
        html = env.get_template(page.template).render(**page.context, root=page.root, page_path=page.path)
        files[page.path] = html.encode("utf-8")
    for path, (callback, records) in data.items():
        # Loaded by a <script> tag: fetch() of a local file fails from file://.
        files[path] = f"window.{callback}(\"{packed(records)}\");\n".encode("utf-8")
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            files[f"static/{path.relative_to(STATIC_DIR).as_posix()}"] = path.read_bytes()
    files[VEGA_BUNDLE] = _MADE[0]
    for run in runs:
        tiles = run.path / run.manifest["tiles"]["directory"]
        for path in sorted(tiles.glob("*")):
            if path.is_file() and ".tmp" not in path.name:
                files[f"{run_dir(run)}/tiles/{path.name}"] = path.read_bytes()
    return files


def build_site(results: list[str | Path], out: str | Path) -> BuildReport:
    """Build the site for ``results`` directories into ``out`` (replaced whole, atomically)."""
    out = Path(out)
    runs = [load_run(r) for r in results]
    files = render_files(runs)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"site output {out} exists and is not a folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel, data in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        staging.chmod(0o755)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pages = sum(1 for p in files if p.endswith(".html"))
    return BuildReport(len(runs), pages, len(files), sum(len(b) for b in files.values()))
