"""Every page of a built site at a desktop's and a phone's width: does it fit (no sideways scroll), how
tall is it, are its charts drawn; and optionally a screenshot of what a visitor sees first.

    .venv/bin/python bench/pages.py build/site                       # the demo
    .venv/bin/python bench/pages.py build/site --shots /tmp/shots    # and first-screen screenshots

Drives Debian's Chromium headless over file:// (never downloads a browser). The image view is measured for
the first test image, one model shown (its default). Prints a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import CHROMIUM, CHROMIUM_FLAGS  # noqa: E402

WIDTHS = ((1440, 900), (390, 844))


def ready(page) -> None:
    """Wait until every chart has an outcome and, where there is one, the grid or the image view is drawn."""
    page.wait_for_function("() => [...document.querySelectorAll('.chart')].every(e => e.hasAttribute('data-rendered'))",
                           timeout=60_000)
    page.wait_for_function("() => { const g = document.getElementById('grid'), v = document.getElementById('image-view');"
                           " return (!g || g.getAttribute('data-rendered') === 'true') && (!v || v.hasAttribute('data-image-id')); }",
                           timeout=60_000)
    page.wait_for_timeout(300)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, nargs="?", default=Path("build/site"))
    parser.add_argument("--shots", type=Path, help="write a first-screen PNG of every page at each width here")
    args = parser.parse_args()
    pages = sorted(args.site.resolve().rglob("*.html"))
    if not pages:
        sys.exit(f"no pages under {args.site}: build a site first (robustviz demo, or robustviz build)")
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for path in pages:
            row = [str(path.relative_to(args.site.resolve()))]
            for width, height in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": height})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.goto(path.as_uri())
                ready(page)
                scroll, inner, tall = page.evaluate(
                    "[document.documentElement.scrollWidth, innerWidth, document.documentElement.scrollHeight]")
                charts = page.eval_on_selector_all(".chart", "els => els.map(e => e.getAttribute('data-rendered'))")
                drawn = sum(c == "true" for c in charts)
                row += [f"{'yes' if scroll <= inner else f'no ({scroll} px)'}", f"{tall:,} px ({tall / height:.1f} screens)",
                        f"{drawn}/{len(charts)}" + (f", {len(errors)} errors" if errors else "")]
                if args.shots:
                    page.screenshot(path=str(args.shots / f"{row[0].replace('/', '_')[:-5]}-{width}.png"))
                page.close()
            rows.append(row)
        browser.close()
    print("| page | fits 1,440 | height at 1,440 | charts drawn | fits 390 | height at 390 | charts drawn |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
