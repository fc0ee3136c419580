"""How fluid the explorer is, in headless Chromium from file://, and how big the site is.

    .venv/bin/python bench/explorer.py build/full-mnist/site     # the 10,000-image run
    .venv/bin/python bench/explorer.py build/site                # the demo

Measures, on the first run of the site (each a median of several tries, in the page's own clock):
- first render: navigation start to the grid's first drawing (data unpacked, grid and map drawn);
- filter / sort: a control's change event to the grid and map redrawn and two animation frames
  painted (the change goes through the URL hash, as a user's does);
- map brush: the mouse-up of a drag on the map to the same;
- the per-image view: navigation start to the image's view drawn (its charts included);
- the site's size and file count (targets: 2 s, 200 ms, 100 ms; 100 MB and 2,000 files).
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

# Change one control, then resolve with the milliseconds until the grid was redrawn and painted.
CHANGE_JS = """async ([name, value]) => {
  const stats = window.robustviz.explorer.stats, before = stats.renders, el = document.querySelector(`[name='${name}']`);
  const t0 = performance.now();
  el.value = value;
  el.dispatchEvent(new Event('change', {bubbles: true}));
  while (stats.renders === before) await new Promise(r => setTimeout(r, 0));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t0, Number(document.getElementById('grid').getAttribute('data-count'))];
}"""

# Drag on the map from (fx0, fy0) to (fx1, fy1) (fractions of its size); ms from mouse-up to painted.
BRUSH_JS = """async ([fx0, fy0, fx1, fy1]) => {
  const stats = window.robustviz.explorer.stats, before = stats.renders, c = document.getElementById('feature-map');
  const r = c.getBoundingClientRect(), at = (fx, fy) => ({clientX: r.left + fx * r.width, clientY: r.top + fy * r.height, bubbles: true, pointerId: 1});
  c.dispatchEvent(new PointerEvent('pointerdown', at(fx0, fy0)));
  for (let k = 1; k <= 5; k++) window.dispatchEvent(new PointerEvent('pointermove', at(fx0 + (fx1 - fx0) * k / 5, fy0 + (fy1 - fy0) * k / 5)));
  const t0 = performance.now();
  window.dispatchEvent(new PointerEvent('pointerup', at(fx1, fy1)));
  while (stats.renders === before) await new Promise(r => setTimeout(r, 0));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - t0, Number(document.getElementById('grid').getAttribute('data-count'))];
}"""


def site_size(site: Path) -> tuple[int, int]:
    files = [p for p in site.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, nargs="?", default=Path("build/full-mnist/site"))
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    runs = sorted((args.site.resolve() / "runs").iterdir())
    if not runs:
        raise SystemExit(f"{args.site} holds no run; build a site first")
    run = runs[0]
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {"first render": [], "filter / sort": [], "map brush": [], "image view": []}
    counts = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for _ in range(args.tries):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((run / "explorer.html").as_uri())
            page.wait_for_function("() => window.robustviz.explorer.stats && window.robustviz.explorer.stats.firstRenderMs !== null",
                                   timeout=60_000)
            out["first render"].append(page.evaluate("() => window.robustviz.explorer.stats.firstRenderMs"))
            counts["all"] = int(page.get_attribute("#grid", "data-count"))
            first = page.evaluate("() => document.querySelector('#grid a.thumb').dataset.imageId")
            for name, value in (("class", "3"), ("sort", "entropy"), ("dir", "desc"), ("error", "1"), ("error", ""), ("class", ""),
                                ("sort", "ranking"), ("outcome-fgsm", "fooled"), ("outcome-fgsm", "")):
                ms, n = page.evaluate(CHANGE_JS, [name, value])
                out["filter / sort"].append(ms)
                counts[f"{name}={value}"] = n
            for box in ((0.05, 0.05, 0.5, 0.5), (0.3, 0.2, 0.9, 0.8), (0.5, 0.5, 0.52, 0.52)):
                ms, n = page.evaluate(BRUSH_JS, list(box))
                out["map brush"].append(ms)
                counts[f"brush {box}"] = n
            if errors:
                raise SystemExit(f"page errors: {errors}")
            page.close()
            view = browser.new_page(viewport={"width": 1400, "height": 1000})
            view.goto((run / "image.html").as_uri() + f"#id={first}")
            view.wait_for_function("() => document.getElementById('image-view').hasAttribute('data-image-id') && "
                                   "[...document.querySelectorAll('.chart')].every(e => e.hasAttribute('data-rendered'))",
                                   timeout=60_000)
            out["image view"].append(view.evaluate("() => performance.now()"))
            view.close()
        browser.close()
    files, size = site_size(args.site)
    print(f"site {args.site}: run {run.name}, {counts['all']:,} images; grid counts after each step: {counts}\n")
    print("| measure | median | worst | tries | target |\n| --- | ---: | ---: | ---: | ---: |")
    targets = {"first render": "≤ 2,000 ms", "filter / sort": "≤ 200 ms", "map brush": "≤ 100 ms", "image view": ""}
    for name, values in out.items():
        print(f"| {name} | {statistics.median(values):.0f} ms | {max(values):.0f} ms | {len(values)} | {targets[name]} |")
    print(f"| site size | {size / 1e6:.1f} MB | | | ≤ 100 MB |\n| site files | {files:,} | | | ≤ 2,000 |")


if __name__ == "__main__":
    main()
