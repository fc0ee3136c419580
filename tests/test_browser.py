"""Headless Chromium opens the built site from file:// and checks what a visitor would see.

Uses Debian's chromium at /usr/bin/chromium through Playwright; never downloads a browser.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import CHROMIUM, CHROMIUM_FLAGS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser test needs Chromium at {CHROMIUM}: apt-get install chromium "
                    f"(make test does this when run as root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


class Visit:
    """One page load with every console message, page error and request recorded."""

    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.console, self.errors, self.requests = [], [], []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.wait_for_charts()

    def wait_for_charts(self) -> None:
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('.chart')].every(e => e.hasAttribute('data-rendered'))",
            timeout=30_000)

    def rendered(self) -> list[str]:
        return self.page.eval_on_selector_all(".chart", "els => els.map(e => e.getAttribute('data-rendered'))")

    def find_point(self, spec_id: str) -> tuple[float, float, int]:
        """A point that links to an image: located from Vega's scenegraph, then confirmed by moving the
        mouse around there until Vega reports that point under it (page coordinates and its id)."""
        found = self.page.evaluate(POINT_JS, spec_id)
        assert found, f"no point with a link in {spec_id}"
        self.page.evaluate("(id) => { window.hit = null; window.robustvizViews[id].addEventListener('mousemove',"
                           " (e, item) => { if (!window.hit && item && item.datum && item.datum.href)"
                           " window.hit = [e.clientX, e.clientY, item.datum.image_id]; }); return 1; }", spec_id)
        box = self.page.eval_on_selector(
            f"[data-spec='{spec_id}'] canvas",
            "c => { c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.x, r.y]; }")
        for dy in range(-4, 16, 2):
            for dx in range(-4, 16, 2):
                self.page.mouse.move(box[0] + found[0] + dx, box[1] + found[1] + dy)
                hit = self.page.evaluate("() => window.hit")
                if hit:
                    return hit[0], hit[1], int(hit[2])
        raise AssertionError(f"no point found under the mouse in {spec_id} near {found}")


# The first mark item whose datum links to an image: canvas coordinates (group offsets added) and its id.
POINT_JS = """(specId) => {
  const view = window.robustvizViews[specId];
  const [ox, oy] = view.origin();
  let found = null;
  const walk = (mark, x, y) => {
    for (const item of mark.items || []) {
      if (!found && item.datum && item.datum.href && mark.marktype === 'symbol') {
        found = [x + item.x, y + item.y, item.datum.image_id];
      }
      if (mark.marktype === 'group') {
        for (const child of item.items || []) walk(child, x + (item.x || 0), y + (item.y || 0));
      }
    }
  };
  walk(view.scenegraph().root, ox, oy);
  return found;
}"""


LEGEND_SYMBOL_JS = """([specId, value]) => {
  const view = window.robustvizViews[specId];
  const [ox, oy] = view.origin();
  let found = null;
  const walk = (mark, x, y) => {
    for (const item of mark.items || []) {
      if (mark.role === 'legend-symbol' && item.datum && String(item.datum.value) === value && !found) {
        found = [x + item.x, y + item.y];
      }
      if (mark.marktype === 'group') {
        for (const child of item.items || []) walk(child, x + (item.x || 0), y + (item.y || 0));
      }
    }
  };
  walk(view.scenegraph().root, ox, oy);
  return found;
}"""


def site_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_every_page_renders_offline_without_errors(browser, fixture_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(fixture_site, site)  # a copy: the site works wherever it is put
    pages = site_pages(site)
    names = {p.name for p in pages}
    assert {"index.html", "uncertainty.html", "attacks.html", "detection.html", "good-bad.html", "explorer.html",
            "image.html", "provenance.html"} <= names
    charts = 0
    for page in pages:
        visit = Visit(browser, page.as_uri())
        states = visit.rendered()
        assert all(s == "true" for s in states), (page.name, states)
        charts += len(states)
        canvases = visit.page.eval_on_selector_all(".chart canvas", "els => els.length")
        assert canvases == len(states), page
        assert not visit.errors, (page.name, visit.errors)
        assert not [m for m in visit.console if m[0] in ("error", "warning")], (page.name, visit.console)
        left = [u for u in visit.requests if not u.startswith(("file://", "data:", "blob:"))]
        assert not left, (page.name, left)
        broken = visit.page.evaluate(
            "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"
            ".filter(h => h.startsWith('file://') && !h.includes('#'))")
        for href in broken:
            assert Path(href.removeprefix("file://")).is_file(), (page.name, href)
        visit.page.close()
    assert charts >= 10  # summaries, one dashboard per dropout rate and page, the image view's charts


def test_brushing_and_class_picking_select_in_the_linked_charts(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "uncertainty.html").as_uri())
    spec_id = "spec-p0.2"
    box = visit.page.eval_on_selector(
        f"[data-spec='{spec_id}'] canvas",
        "c => { c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.x, r.y]; }")
    count = lambda store: visit.page.evaluate(  # noqa: E731
        f"() => window.robustvizViews['{spec_id}'].data('{store}').length")
    assert count("brush_store") == 0
    # Drag across the scatter plot (its plot area starts about 60 px in, 40 px down).
    x0, y0 = box[0] + 70, box[1] + 50
    visit.page.mouse.move(x0, y0)
    visit.page.mouse.down()
    visit.page.mouse.move(x0 + 200, y0 + 150, steps=5)
    visit.page.mouse.up()
    visit.page.wait_for_timeout(200)
    assert count("brush_store") == 1
    assert count("legend_pick_store") == 0
    # Click the legend symbol of class "3": find it in Vega's scenegraph, add up its group offsets.
    where = visit.page.evaluate(LEGEND_SYMBOL_JS, [spec_id, "3"])
    assert where, "no legend entry for class 3"
    visit.page.mouse.click(box[0] + where[0], box[1] + where[1])
    visit.page.wait_for_timeout(200)
    assert count("legend_pick_store") == 1
    assert not visit.errors
    visit.page.close()


def test_a_click_on_an_explorer_point_opens_that_images_view(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "explorer.html").as_uri())
    x, y, image_id = visit.find_point("spec-explorer")
    visit.page.mouse.click(x, y)
    visit.page.wait_for_url(f"**/image.html#id={image_id}", timeout=10_000)
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{image_id}'",
                                 timeout=10_000)
    visit.wait_for_charts()
    states = visit.rendered()
    assert len(states) == 2 * 2 and all(s == "true" for s in states)  # probabilities + passes, two models
    assert f"#{image_id}" in visit.page.inner_text("#image-title")
    tiles = visit.page.eval_on_selector_all("#image-view .tile", "els => els.map(e => e.style.backgroundImage)")
    assert len(tiles) >= 2 * 13  # per model: original; 3 attacks on every image x 2 operating points x (adversarial, heatmap)
    captions = visit.page.inner_text("#image-view")
    assert "fgsm minimal" in captions and "fgsm confident" in captions and "noise, same" in captions
    for url in {t.split('"')[1] for t in tiles}:
        assert (fixture_site / "runs" / "tiny" / url).is_file(), url
    assert not visit.errors


def test_image_view_reports_an_unknown_id(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + "#id=999999")
    visit.page.wait_for_function("() => document.getElementById('image-status').textContent.includes('999999')")
    assert "No test image has id 999999" in visit.page.inner_text("#image-status")
    assert not visit.errors


# Every symbol of the AUROC view whose positives are a noise control: its canvas position and variant.
VARIANT_JS = """([specId, kind]) => {
  const view = window.robustvizViews[specId];
  const [ox, oy] = view.origin();
  const found = [];
  const walk = (mark, x, y) => {
    for (const item of mark.items || []) {
      if (item.datum && item.datum.kind === kind && item.datum.auroc !== undefined && mark.marktype === 'symbol') {
        found.push([x + item.x, y + item.y, item.datum.variant]);
      }
      if (mark.marktype === 'group') {
        for (const child of item.items || []) walk(child, x + (item.x || 0), y + (item.y || 0));
      }
    }
  };
  walk(view.scenegraph().root, ox, oy);
  return found;
}"""

# The variants the ROC view draws a curve for.
ROC_JS = """(specId) => {
  const view = window.robustvizViews[specId];
  const out = new Set();
  const walk = (mark, inRoc) => {
    for (const item of mark.items || []) {
      const here = inRoc || (mark.name || '').startsWith('roc_curves');
      if (here && mark.marktype === 'line' && item.datum && item.datum.variant) out.add(item.datum.variant);
      if (mark.marktype === 'group') for (const child of item.items || []) walk(child, here);
    }
  };
  walk(view.scenegraph().root, false);
  return [...out];
}"""


def test_picking_positives_in_the_detection_view_filters_the_roc_curves(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "detection.html").as_uri())
    spec_id = "spec-p0.2"
    shown = visit.page.evaluate(ROC_JS, spec_id)
    assert len(shown) == 1 and shown[0].endswith("confident")  # the default pick
    noise = visit.page.evaluate(VARIANT_JS, [spec_id, "noise control"])
    assert noise, "no noise-control row in the AUROC view"
    box = visit.page.eval_on_selector(
        f"[data-spec='{spec_id}'] canvas",
        "c => { c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.x, r.y]; }")
    # Confirm the mark under the mouse (as a user would see its tooltip), then click it.
    visit.page.evaluate("(id) => { window.hit = null; window.robustvizViews[id].addEventListener('mousemove',"
                        " (e, item) => { if (!window.hit && item && item.datum && item.datum.kind === 'noise control'"
                        " && item.mark.marktype === 'symbol') window.hit = [e.clientX, e.clientY, item.datum.variant];"
                        " }); return 1; }", spec_id)
    x, y, _ = noise[0]
    hit = None
    for dy in range(-6, 12, 2):
        for dx in range(-6, 12, 2):
            visit.page.mouse.move(box[0] + x + dx, box[1] + y + dy)
            hit = hit or visit.page.evaluate("() => window.hit")
    assert hit, "no noise-control point under the mouse"
    visit.page.mouse.click(hit[0], hit[1])
    variant = hit[2]
    visit.page.wait_for_timeout(300)
    assert visit.page.evaluate(ROC_JS, spec_id) == [variant]
    # The score legend picks a score: the views keep the picked positives and show only that score.
    where = visit.page.evaluate(LEGEND_SYMBOL_JS, [spec_id, "mutual_info"])
    assert where, "no legend entry for mutual_info"
    # The scenegraph walk gets the legend's column right; its row is confirmed under the mouse.
    visit.page.evaluate("(id) => { window.entry = null; window.robustvizViews[id].addEventListener('mousemove',"
                        " (e, item) => { if (!window.entry && item && item.mark.role.startsWith('legend')"
                        " && item.datum && item.datum.value === 'mutual_info') window.entry = [e.clientX, e.clientY];"
                        " }); return 1; }", spec_id)
    entry = None
    for dy in range(0, 400, 3):
        visit.page.mouse.move(box[0] + where[0], box[1] + where[1] + dy)
        entry = visit.page.evaluate("() => window.entry")
        if entry:
            break
    assert entry, "no legend entry for mutual_info under the mouse"
    visit.page.mouse.click(entry[0], entry[1])
    visit.page.wait_for_timeout(300)
    scores = visit.page.evaluate(f"() => window.robustvizViews['{spec_id}'].data('score_pick_store').map(t => t.values[0])")
    assert scores == ["mutual_info"]
    assert visit.page.evaluate(ROC_JS, spec_id) == [variant]
    text = visit.page.inner_text("main")
    assert "N = " in text and "max_prob" in text and "noise ~ " in text
    assert not visit.errors
    visit.page.close()
