"""Time for each page of a built site to load from file:// and draw every chart, in headless Chromium.

    .venv/bin/python bench/page_load.py --site build/full-mnist/site [--repeat 3]

Per page: its size (HTML, the data it inlines), the time from navigation to the load event, and to
every ``.chart`` element carrying ``data-rendered`` (static/site.js sets it when Vega-Embed is done),
best of ``--repeat`` cold loads (a new browser context each time). The per-image view is timed for
one image id (it loads one data chunk). Uses Debian's /usr/bin/chromium, never a downloaded browser.
Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from site_builder.render import unpacked  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
ALL_DRAWN = "() => [...document.querySelectorAll('.chart')].every(e => e.hasAttribute('data-rendered'))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site", type=Path, default=Path("build/site"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image-id", type=int, help="the image the per-image view opens (default: the first)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    pages = sorted(args.site.glob("runs/*/*.html")) + [args.site / "index.html"]
    if not pages[0].is_file():
        sys.exit(f"no pages under {args.site}; build a site first")
    if args.image_id is None:  # the first image of the first data chunk (packed: site_builder/render.py)
        chunk = next(args.site.glob("runs/*/data/images-000.js")).read_text()
        args.image_id = int(unpacked(re.search(r'"([A-Za-z0-9+/=]+)"', chunk).group(1))[0]["image_id"])
    print(f"site: {args.site.resolve()}; per-image view of image {args.image_id}")
    print("| page | HTML | load event, s | every chart drawn, s | charts |\n| --- | ---: | ---: | ---: | ---: |")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
        for page_path in sorted(pages, key=lambda q: -q.stat().st_size):
            url = page_path.resolve().as_uri() + (f"#id={args.image_id}" if page_path.name == "image.html" else "")
            loads, drawn, charts = [], [], 0
            for _ in range(args.repeat):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                start = time.perf_counter()
                page.goto(url, wait_until="load", timeout=120_000)
                loads.append(time.perf_counter() - start)
                if page_path.name == "image.html":  # its charts exist once the image's chunk has arrived
                    page.wait_for_function("() => document.querySelector('#image-view .chart') !== null",
                                           timeout=120_000)
                page.wait_for_function(ALL_DRAWN, timeout=120_000, polling=50)
                drawn.append(time.perf_counter() - start)
                charts = page.eval_on_selector_all(".chart", "els => els.length")
                context.close()
            name = page_path.relative_to(args.site).as_posix()
            print(f"| {name} | {page_path.stat().st_size / 1e6:.1f} MB | {min(loads):.2f} | {min(drawn):.2f} | {charts} |")
        browser.close()


if __name__ == "__main__":
    main()
