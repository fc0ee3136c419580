"""Headless Chromium opens the built site from file:// and checks what a visitor would see.

Uses Debian's chromium at /usr/bin/chromium through Playwright; never downloads a browser.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compute.contract import PALETTE
from conftest import CHROMIUM, CHROMIUM_FLAGS, RESULTS_FIXTURE
from site_builder import explorer_data
from site_builder.load import load_run

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

    def __init__(self, browser, url: str, width: int = 1300, height: int = 900):
        self.page = browser.new_page(viewport={"width": width, "height": height})
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


LEGEND_SYMBOL_JS = """([specId, value]) => {
  const view = window.robustviz.views[specId];
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
    assert {"index.html", "findings.html", "uncertainty.html", "attacks.html", "detection.html", "good-bad.html", "explorer.html",
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


# Every chart drawn on the page whose visible axis labels overlap: {chart: [[label, label], ...]}. Vega hides a
# label it would overlap by setting its opacity to 0; what is left visible must keep 2 px from its neighbour.
OVERLAPPING_LABELS_JS = """() => {
  const out = {};
  for (const [id, view] of Object.entries(window.robustviz.views)) {
    const walk = (mark) => {
      if (mark.role === 'axis-label') {
        const shown = (mark.items || []).filter(t => t.text !== '' && (t.opacity === undefined || t.opacity > 0));
        for (let i = 0; i < shown.length; i++) for (let j = i + 1; j < shown.length; j++) {
          const a = shown[i].bounds, b = shown[j].bounds;
          if (a.x1 < b.x2 + 2 && b.x1 < a.x2 + 2 && a.y1 < b.y2 - 0.5 && b.y1 < a.y2 - 0.5)
            (out[id] = out[id] || []).push([String(shown[i].text), String(shown[j].text)]);
        }
      }
      for (const item of mark.items || []) for (const child of item.items || []) walk(child);
    };
    walk(view.scenegraph().root);
  }
  return out;
}"""


@pytest.mark.parametrize("width,height", [(1440, 900), (390, 844)])
def test_no_page_scrolls_sideways_on_a_desktop_or_a_phone(browser, fixture_site, width, height):
    """Every page fits its width, and so does every chart: one wider than its container is redrawn
    narrowed (static/chart-fit.js), not left to scroll. No chart's tick labels overlap."""
    wide, charts_wide, overlaps = {}, {}, {}
    for page in site_pages(fixture_site):
        visit = Visit(browser, page.as_uri(), width, height)
        assert all(s == "true" for s in visit.rendered()), page.name
        scroll, inner = visit.page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        if scroll > inner:
            wide[page.name] = scroll
        over = visit.page.evaluate("() => [...document.querySelectorAll('.chart')].filter(e => e.clientWidth > 0"
                                   " && e.scrollWidth > e.clientWidth + 1).map(e => [e.id || e.dataset.spec,"
                                   " e.scrollWidth, e.clientWidth])")
        if over:
            charts_wide[page.name] = over
        touching = visit.page.evaluate(OVERLAPPING_LABELS_JS)
        if touching:
            overlaps[page.name] = touching
        assert not visit.errors, (page.name, visit.errors)
        visit.page.close()
    assert wide == {}, f"wider than {width} px: {wide}"
    assert charts_wide == {}, f"charts wider than their container at {width} px: {charts_wide}"
    assert overlaps == {}, f"overlapping tick labels at {width} px: {overlaps}"


# Every chart a visitor sees (not those of a model section the switch hides), by its spec's id.
CHART_FIT_JS = """() => [...document.querySelectorAll('.chart')].filter(e => e.robustvizFit && !e.closest('[hidden]')).map(e => {
  const c = e.querySelector('canvas');
  return {id: e.getAttribute('data-spec'), narrowed: e.robustvizFit.narrowed, drawn: c.getBoundingClientRect().width,
          room: e.clientWidth};
})"""


def test_a_chart_follows_its_window_from_a_desktop_to_a_phone_and_back(browser, fixture_site):
    """A turned phone or a resized window refits every dashboard: narrowed to fit a phone, drawn as
    written again (not left narrowed) once the window is wide again."""
    page = next(p for p in site_pages(fixture_site) if p.name == "attacks.html")
    visit = Visit(browser, page.as_uri(), 1440, 900)
    wide = visit.page.evaluate(CHART_FIT_JS)
    assert wide and not any(c["narrowed"] for c in wide), wide
    dashboards = [c["id"] for c in wide if c["drawn"] > 600]
    assert dashboards, wide  # the dashboards are wider than a phone as written

    def settled(narrowed: bool) -> list[dict]:
        visit.page.wait_for_function(f"() => [...document.querySelectorAll('.chart')].filter(e => e.robustvizFit"
                                     f" && !e.closest('[hidden]')"
                                     f" && e.querySelector('canvas').getBoundingClientRect().width > 600).length"
                                     f" {'===' if narrowed else '>='} {0 if narrowed else len(dashboards)}", timeout=30_000)
        visit.page.wait_for_timeout(300)
        return {c["id"]: c for c in visit.page.evaluate(CHART_FIT_JS)}

    visit.page.set_viewport_size({"width": 390, "height": 844})
    phone = settled(True)
    assert all(phone[d]["narrowed"] and phone[d]["drawn"] <= phone[d]["room"] for d in dashboards), phone
    visit.page.set_viewport_size({"width": 1440, "height": 900})
    back = settled(False)
    assert all(not back[d]["narrowed"] and abs(back[d]["drawn"] - {c["id"]: c for c in wide}[d]["drawn"]) < 1
               for d in dashboards), back
    assert not visit.errors, visit.errors
    visit.page.close()


# What a chart drew: per bar mark (its name's first two words), each bar's class and the value its
# height stands for.
BARS_JS = """(id) => { const out = {}, view = window.robustviz.views[id];
  const walk = (m) => { for (const it of m.items || []) {
    if (m.marktype === 'rect' && m.name && it.datum && it.datum.class_name !== undefined) {
      const key = m.name.split('_').slice(0, 2).join('_');
      // From 0 on a [0, 1] axis: the bar's foot (y2) is the plot's height, so its height over that is its value.
      (out[key] = out[key] || {})[it.datum.class_name] = (it.y2 - it.y) / it.y2;
    }
    for (const c of it.items || []) walk(c); } };
  walk(window.robustviz.views[id].scenegraph().root); return out; }"""


def test_each_per_class_bar_chart_draws_the_mean_of_its_own_figure(browser, fixture_site):
    """Confidence vs Class and Accuracy vs Class, as drawn: each bar is its class's mean of its own
    column of the uncertainty table (clean images). Vega-Lite merges aggregates of one source, so two
    charts whose outputs share names would both draw the first chart's figure."""
    run = load_run(RESULTS_FIXTURE)
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "uncertainty.html").as_uri())
    for key in run.model_keys:
        drawn = visit.page.evaluate(BARS_JS, f"spec-{key}")
        clean = run.uncertainty[(run.uncertainty["model"] == key) & (run.uncertainty["condition"] == "clean")]
        clean = clean.assign(class_name=clean["label"].map(dict(enumerate(run.class_names))))
        for chart, field in (("confidence_bars", "confidence"), ("accuracy_bars", "true_prob")):
            want = clean.groupby("class_name")[field].mean()
            assert drawn[chart].keys() == set(want.index), (chart, drawn.keys())
            for name, value in want.items():
                assert drawn[chart][name] == pytest.approx(value, abs=0.005), (key, chart, name)
    assert not visit.errors
    visit.page.close()


def test_brushing_and_class_picking_select_in_the_linked_charts(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "uncertainty.html").as_uri())
    spec_id = "spec-cnn-p0.2"
    box = visit.page.eval_on_selector(
        f"[data-spec='{spec_id}'] canvas",
        "c => { c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.x, r.y]; }")
    count = lambda store: visit.page.evaluate(  # noqa: E731
        f"() => window.robustviz.views['{spec_id}'].data('{store}').length")
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


def grid_ids(visit: Visit) -> list[int]:
    """Image ids of the grid's drawn cells, in grid order."""
    return visit.page.evaluate("() => [...document.querySelectorAll('#grid a.thumb')]"
                               ".sort((a, b) => Number(a.id.slice(5)) - Number(b.id.slice(5)))"
                               ".map(a => Number(a.getAttribute('data-image-id')))")


def wait_count(visit: Visit, count: int) -> None:
    visit.page.wait_for_function(f"() => document.getElementById('grid').getAttribute('data-count') === '{count}'",
                                 timeout=10_000)


def map_box(visit: Visit) -> list[float]:
    """The feature map's canvas, scrolled into view: [x, y, width, height] in page pixels."""
    return visit.page.eval_on_selector("#feature-map", "c => { c.scrollIntoView(); const r = c.getBoundingClientRect();"
                                                       " return [r.x, r.y, r.width, r.height]; }")


def open_explorer(browser, site: Path, hash_: str = "", width: int = 1300, height: int = 900) -> Visit:
    visit = Visit(browser, (site / "runs" / "tiny" / "explorer.html").as_uri() + hash_, width, height)
    visit.page.wait_for_function("() => document.getElementById('grid').getAttribute('data-rendered') === 'true'",
                                 timeout=30_000)
    return visit


def test_explorer_grid_shows_every_image_and_filters_sorts_and_keeps_its_state(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    visit = open_explorer(browser, fixture_site)
    n = len(run.images)
    assert visit.page.get_attribute("#grid", "data-count") == str(n)
    shown = grid_ids(visit)
    assert len(shown) == n and set(shown) == set(run.images["image_id"])  # 40 images: all drawn
    pictures = visit.page.eval_on_selector_all("#grid a.thumb .tile", "els => els.map(e => e.style.backgroundImage)")
    for url in {t.split('"')[1] for t in pictures}:
        assert (fixture_site / "runs" / "tiny" / url).is_file(), url
    # Default order: FGSM's smallest flipping epsilon, ascending, images without one last.
    fgsm = run.attacks[(run.attacks["attack"] == "fgsm") & (run.attacks["operating_point"] == "minimal")
                       & (run.attacks["model"] == "cnn-p0.2")].set_index("image_id")
    eps = fgsm["min_eps"].where(fgsm["success"])
    assert shown[0] == eps.idxmin()
    assert all(eps[i] != eps[i] for i in shown[eps.notna().sum():])
    # The sort is named by the ranking attack's card, and the outcome marks wear the palette's colours.
    sort_label = visit.page.eval_on_selector("select[name='sort'] option[value='ranking']", "o => o.textContent")
    assert sort_label == run.cards["fgsm"]["ranking_label"] == "smallest flipping ε (FGSM)"
    fooled = visit.page.eval_on_selector("#grid .mark.fooled", "e => getComputedStyle(e).backgroundColor")
    assert fooled == "rgb({}, {}, {})".format(*(int(PALETTE["outcome"]["fooled"][k:k + 2], 16) for k in (1, 3, 5)))
    # A filter narrows the grid to exactly the images it names, and lands in the URL.
    label_of = run.images.set_index("image_id")["label"]
    visit.page.select_option("select[name='class']", "3")
    wait_count(visit, int((run.images["label"] == 3).sum()))
    assert "class=3" in visit.page.url
    assert {label_of[i] for i in grid_ids(visit)} == {3}
    # Sort by entropy, descending: the most uncertain image of class 3 (model p = 0.2) first.
    visit.page.select_option("select[name='sort']", "entropy")
    visit.page.select_option("select[name='dir']", "desc")
    visit.page.wait_for_function("() => location.hash.includes('dir=desc')")
    clean = run.uncertainty[(run.uncertainty["condition"] == "clean") & (run.uncertainty["model"] == "cnn-p0.2")]
    clean = clean[clean["label"] == 3].sort_values(["entropy", "image_id"], ascending=[False, False])
    assert grid_ids(visit) == clean["image_id"].tolist()
    # Back restores the previous view; the state travels with the address.
    visit.page.go_back()
    visit.page.wait_for_function("() => !location.hash.includes('dir=desc')")
    assert visit.page.input_value("select[name='dir']") == "asc"
    assert visit.page.input_value("select[name='sort']") == "entropy"
    # Keyboard: the arrow moves to the second image, Enter opens its view with prev / next in this order.
    order = grid_ids(visit)
    visit.page.focus("#grid")
    visit.page.keyboard.press("ArrowRight")
    visit.page.keyboard.press("Enter")
    visit.page.wait_for_url(f"**/image.html#id={order[1]}*", timeout=10_000)
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{order[1]}'",
                                 timeout=10_000)
    visit.page.wait_for_function("() => document.getElementById('image-prev').href.includes('id=')")
    assert f"id={order[0]}&" in visit.page.get_attribute("#image-prev", "href")
    assert f"id={order[2]}&" in visit.page.get_attribute("#image-next", "href")
    assert "class=3" in visit.page.get_attribute("#image-back", "href")
    assert not visit.errors and not [m for m in visit.console if m[0] in ("error", "warning")]
    assert not [u for u in visit.requests if not u.startswith(("file://", "data:", "blob:"))]
    visit.page.close()


def test_explorer_score_ranges_and_models_follow_the_tables(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    visit = open_explorer(browser, fixture_site, "#model=cnn-p0.3&sort=mutual_info&dir=desc")
    clean = run.uncertainty[(run.uncertainty["condition"] == "clean") & (run.uncertainty["model"] == "cnn-p0.3")]
    mi = clean.set_index("image_id")["mutual_info"].round(4)
    assert visit.page.input_value("select[name='model']") == "cnn-p0.3"
    assert grid_ids(visit) == sorted(mi.index, key=lambda i: (-mi[i], -i))
    threshold = round(float(clean["entropy"].median()), 2)
    visit.page.fill("input[name='entropy-lo']", str(threshold))
    visit.page.dispatch_event("input[name='entropy-lo']", "change")
    above = clean[clean["entropy"].round(4) >= threshold]["image_id"]
    wait_count(visit, len(above))
    assert set(grid_ids(visit)) == set(above)
    assert f"entropy={threshold}.." in visit.page.url
    assert not visit.errors
    visit.page.close()


def test_a_brush_on_the_feature_map_filters_the_grid_to_the_images_inside(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    data = explorer_data.explorer_data(run)
    visit = open_explorer(browser, fixture_site)
    box = map_box(visit)
    x0, y0 = box[0] + box[2] * 0.05, box[1] + box[3] * 0.05
    visit.page.mouse.move(x0, y0)
    visit.page.mouse.down()
    visit.page.mouse.move(x0 + box[2] * 0.5, y0 + box[3] * 0.9, steps=6)
    visit.page.mouse.up()
    visit.page.wait_for_function("() => location.hash.includes('brush=')")
    brush = [float(v) for v in visit.page.evaluate("() => new URLSearchParams(location.hash.slice(1)).get('brush')").split(",")]
    clean = data["models"][0]["maps"]["tsne"]["clean"]
    inside = {data["ids"][i] for i, (x, y) in enumerate(zip(clean["x"], clean["y"]))
              if min(brush[0], brush[2]) <= x <= max(brush[0], brush[2]) and min(brush[1], brush[3]) <= y <= max(brush[1], brush[3])}
    assert 0 < len(inside) < len(data["ids"])
    wait_count(visit, len(inside))
    assert set(grid_ids(visit)) == inside
    # Hovering an image draws its moves to each attack's adversarial in the map.
    visit.page.hover(f"#grid a.thumb[data-image-id='{sorted(inside)[0]}']")
    assert run.cards["fgsm"]["label"] + " (" in visit.page.inner_text("#map-moves")  # named by its card
    # A click on an empty spot (the map's margin) clears the brush.
    box = map_box(visit)
    visit.page.mouse.click(box[0] + 2, box[1] + 2)
    wait_count(visit, len(data["ids"]))
    # A click on a point selects its image: the grid's active cell, and its moves drawn on the map.
    size, pad = 440, 8
    px = [(pad + x / data["grid"] * (size - 2 * pad), size - pad - y / data["grid"] * (size - 2 * pad))
          for x, y in zip(clean["x"], clean["y"])]
    alone = max(range(len(px)), key=lambda i: min(np.hypot(px[i][0] - q[0], px[i][1] - q[1])
                                                  for j, q in enumerate(px) if j != i))
    box = map_box(visit)
    visit.page.mouse.click(box[0] + px[alone][0] * box[2] / size, box[1] + px[alone][1] * box[3] / size)
    picked = data["ids"][alone]
    visit.page.wait_for_function(f"() => document.getElementById('map-moves').textContent.startsWith('#{picked}:')")
    assert visit.page.get_attribute("#grid a.thumb.active", "data-image-id") == str(picked)
    assert not visit.errors and not [m for m in visit.console if m[0] in ("error", "warning")]
    visit.page.close()


def test_the_image_view_shows_large_pictures_a_row_per_attack_and_the_nearest_images(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    image_id = int(run.images["image_id"].iloc[1])
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + f"#id={image_id}")
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{image_id}'",
                                 timeout=10_000)
    visit.wait_for_charts()
    states = visit.rendered()
    assert len(states) == 2 and all(s == "true" for s in states)  # probabilities + passes, of the one model shown
    assert f"#{image_id}" in visit.page.inner_text("#image-title")
    assert visit.page.eval_on_selector_all(".model", "els => els.map(e => e.dataset.model)") == ["cnn-p0.2"]
    shown = visit.page.eval_on_selector_all(
        ".attack-row .point", "els => els.map(e => [e.closest('.attack-row').dataset.attack, e.dataset.point])")
    attacked = run.attacks[(run.attacks["image_id"] == image_id) & (run.attacks["operating_point"] != "budget")
                           & (run.attacks["model"] == "cnn-p0.2")]
    assert attacked["clean_correct"].all()
    rows = [f"{a} {point}" for a, points in shown for point in points.split(" ")]
    assert sorted(rows) == sorted(f"{a} {o}" for a, o in zip(attacked["attack"], attacked["operating_point"]))
    # One picture for two points only where the attack found the same adversarial for both.
    by = attacked.set_index(["attack", "operating_point"])
    for a, points in shown:
        same = all(by.loc[(a, "minimal"), c] == by.loc[(a, "confident"), c] for c in ("adv_pred", "l2", "linf", "adv_prob"))
        assert (points == "minimal confident") == bool(same and by.loc[(a, "minimal"), "success"]), a
    # The original is shown once, in the summary; each row holds only adversarials and perturbations.
    originals = visit.page.eval_on_selector_all("#image-view .tile", "els => els.filter(e => e.closest('.perturbation') === null"
                                                " && e.getAttribute('aria-label').startsWith('original')).length")
    assert originals == 1
    width = visit.page.eval_on_selector(".attack-row .tile.big", "e => e.getBoundingClientRect().width")
    assert width >= 8 * 28  # pixelated, at least 8x
    assert visit.page.eval_on_selector(".attack-row .tile.big", "e => getComputedStyle(e).imageRendering") == "pixelated"
    near = visit.page.eval_on_selector_all(".neighbours a", "els => els.map(e => Number(e.dataset.imageId))")
    expected = run.neighbours[(run.neighbours["image_id"] == image_id) & (run.neighbours["model"] == "cnn-p0.2")]
    assert near[:5] == expected.sort_values("rank")["neighbour_id"].tolist()
    tiles = visit.page.eval_on_selector_all("#image-view .tile", "els => els.map(e => e.style.backgroundImage)")
    for url in {t.split('"')[1] for t in tiles}:
        assert (fixture_site / "runs" / "tiny" / url).is_file(), url
    assert not visit.errors
    visit.page.close()


def test_the_perturbation_shown_is_the_measured_change(browser, fixture_site):
    """The browser draws the perturbation from the original and adversarial tiles; on screen each
    pixel must be 255 - |adversarial - original| / L-inf * 255 (white: unchanged)."""
    from PIL import Image

    run = load_run(RESULTS_FIXTURE)
    row = run.attacks[(run.attacks["attack"] == "lbfgs") & (run.attacks["operating_point"] == "minimal")
                      & run.attacks["success"] & (run.attacks["model"] == "cnn-p0.2")].iloc[0]
    image_id = int(row["image_id"])
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + f"#id={image_id}")
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{image_id}'",
                                 timeout=10_000)
    shot = visit.page.locator(".model[data-model='cnn-p0.2'] .attack-row[data-attack='lbfgs'] .point[data-point='minimal'] .perturbation")
    tmp = fixture_site.parent / "perturbation.png"
    shot.screenshot(path=str(tmp))
    seen = np.asarray(Image.open(tmp).convert("L"), dtype=np.float64)
    size = run.manifest["tiles"]["tile_width"]
    scale = seen.shape[1] / size
    centre = ((np.arange(size) + 0.5) * scale).astype(int)
    seen = seen[np.ix_(centre, centre)]

    def tile_of(frame: pd.DataFrame, root: Path) -> np.ndarray:
        t = frame.iloc[0]
        sheet = np.asarray(Image.open(root / "tiles" / t["sheet"]).convert("L"), dtype=np.float64)
        return sheet[t["sheet_row"] * size:(t["sheet_row"] + 1) * size, t["sheet_col"] * size:(t["sheet_col"] + 1) * size]

    original = tile_of(run.images[run.images["image_id"] == image_id], RESULTS_FIXTURE)
    adversarial = tile_of(run.tiles[(run.tiles["image_id"] == image_id) & (run.tiles["attack"] == "lbfgs")
                                    & (run.tiles["operating_point"] == "minimal") & (run.tiles["model"] == "cnn-p0.2")],
                          RESULTS_FIXTURE)
    change = np.abs(adversarial - original)
    assert change.max() / 255 == pytest.approx(row["linf"], abs=1e-6)
    expected = 255 - np.clip(change / change.max() * 255, 0, 255)
    assert np.abs(seen - expected).max() <= 4, np.abs(seen - expected).max()
    visit.page.close()


def test_image_view_reports_an_unknown_id(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + "#id=999999")
    visit.page.wait_for_function("() => document.getElementById('image-status').textContent.includes('999999')")
    assert "No test image has id 999999" in visit.page.inner_text("#image-status")
    assert not visit.errors


# Every symbol of the AUROC view whose positives are a noise control: its canvas position and variant.
VARIANT_JS = """([specId, kind]) => {
  const view = window.robustviz.views[specId];
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
  const view = window.robustviz.views[specId];
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


# Every title of a view: its lines, and whether Vega cuts one (with an ellipsis, at the title's limit:
# measured here in the title's own font).
TITLE_LINES_JS = """(id) => { const out = [], ctx = document.createElement('canvas').getContext('2d');
  const walk = (m) => { for (const it of m.items || []) {
    if (m.role === 'title-text' && it.text) {
      const lines = [].concat(it.text);
      ctx.font = `${it.fontWeight || 'normal'} ${it.fontSize || 13}px ${it.font || 'sans-serif'}`;
      out.push({lines: lines, cut: !!it.limit && lines.some(l => ctx.measureText(l).width > it.limit + 0.5)});
    }
    for (const c of it.items || []) walk(c); } };
  walk(window.robustviz.views[id].scenegraph().root); return out; }"""


def test_picking_positives_in_the_detection_view_filters_the_roc_curves(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "detection.html").as_uri())
    spec_id = "spec-cnn-p0.2"
    shown = visit.page.evaluate(ROC_JS, spec_id)
    assert len(shown) == 1 and shown[0].endswith("confident")  # the default pick
    noise = visit.page.evaluate(VARIANT_JS, [spec_id, "noise control"])
    assert noise, "no noise-control row in the AUROC view"
    box = visit.page.eval_on_selector(
        f"[data-spec='{spec_id}'] canvas",
        "c => { c.scrollIntoView(); const r = c.getBoundingClientRect(); return [r.x, r.y]; }")
    # Confirm the mark under the mouse (as a user would see its tooltip), then click it.
    visit.page.evaluate("(id) => { window.hit = null; window.robustviz.views[id].addEventListener('mousemove',"
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
    titles = "(id) => { const out = []; const walk = (m) => { for (const it of m.items || []) {" \
             " if (m.role === 'title-text' && it.text) out.push([].concat(it.text).join(' '));" \
             " for (const c of it.items || []) walk(c); } }; walk(window.robustviz.views[id].scenegraph().root); return out; }"
    assert any(t.startswith(f"ROC curves of {shown[0]} ") for t in visit.page.evaluate(titles, spec_id))
    visit.page.mouse.click(hit[0], hit[1])
    variant = hit[2]
    visit.page.wait_for_timeout(300)
    assert visit.page.evaluate(ROC_JS, spec_id) == [variant]
    # The ROC and risk-coverage titles follow the pick, with the picked set's own figures.
    said = visit.page.evaluate(titles, spec_id)
    assert any(t.startswith(f"ROC curves of {variant} Take-away: for {variant} (") for t in said), said
    assert any(t.startswith(f"Risk–coverage: clean (dashed) and under {variant} (solid)") for t in said), said
    assert not any(t.startswith(f"ROC curves of {shown[0]} ") for t in said), said
    # The score legend picks a score: the views keep the picked positives and show only that score.
    where = visit.page.evaluate(LEGEND_SYMBOL_JS, [spec_id, "mutual_info"])
    assert where, "no legend entry for mutual_info"
    # The scenegraph walk gets the legend's column right; its row is confirmed under the mouse.
    visit.page.evaluate("(id) => { window.entry = null; window.robustviz.views[id].addEventListener('mousemove',"
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
    scores = visit.page.evaluate(f"() => window.robustviz.views['{spec_id}'].data('score_pick_store').map(t => t.values[0])")
    assert scores == ["mutual_info"]
    assert visit.page.evaluate(ROC_JS, spec_id) == [variant]
    # A turned phone redraws the dashboard narrowed (site.js refit); what was picked stays picked, and
    # the titles that follow the pick are re-wrapped to the phone, not cut.
    visit.page.set_viewport_size({"width": 390, "height": 844})
    visit.page.wait_for_function(f"() => {{ const el = document.querySelector(\"[data-spec='{spec_id}']\");"
                                 f" return el.robustvizFit.narrowed && el.getAttribute('data-rendered') === 'true'"
                                 f" && el.querySelector('canvas').getBoundingClientRect().width <= el.clientWidth; }}",
                                 timeout=30_000)
    visit.page.wait_for_timeout(500)
    assert visit.page.evaluate(ROC_JS, spec_id) == [variant]
    assert visit.page.evaluate(f"() => window.robustviz.views['{spec_id}'].data('score_pick_store')"
                               f".map(t => t.values[0])") == ["mutual_info"]
    lines = visit.page.evaluate(TITLE_LINES_JS, spec_id)
    roc = next(t["lines"] for t in lines if t["lines"][0].startswith("ROC curves of "))
    assert " ".join(roc).startswith(f"ROC curves of {variant} Take-away: for {variant} (") and len(roc) > 3, roc
    assert not [t for t in lines if t["cut"]], [t for t in lines if t["cut"]]
    visit.page.eval_on_selector_all("main details", "ds => ds.forEach(d => { d.open = true; })")  # the folded tables
    text = visit.page.inner_text("main")
    assert "N = " in text and "max_prob" in text and "noise ~ " in text
    assert not visit.errors
    # The picks are in the address: a copied link opens the dashboard with the same row and score picked.
    link = visit.page.url
    assert f"pick.{spec_id}=" in link
    visit.page.close()
    again = Visit(browser, link)
    assert again.page.evaluate(ROC_JS, spec_id) == [variant]
    assert again.page.evaluate(f"() => window.robustviz.views['{spec_id}'].data('score_pick_store')"
                               f".map(t => t.values[0])") == ["mutual_info"]
    other = "spec-cnn-p0.3"  # the other model's dashboard keeps its own default
    kept = again.page.evaluate(ROC_JS, other)
    assert len(kept) == 1 and kept[0].endswith("confident")
    assert not again.errors
    again.page.close()


def outcome_counts(data: dict, model: int, point: str) -> dict[str, int]:
    """How many (attack, image) marks of each outcome the explorer data holds at one point."""
    named = {v: k for k, v in data["outcomes"].items()}
    counts: dict[str, int] = {}
    for codes in data["models"][model]["outcomes"][point].values():
        for c in codes:
            counts[named[c]] = counts.get(named[c], 0) + 1
    return counts


def test_explorer_marks_follow_the_operating_point_with_counts_beside_every_filter(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    data = explorer_data.explorer_data(run)
    visit = open_explorer(browser, fixture_site)
    # It opens at the data's default point, and says which in its lead; its marks are what the data holds.
    assert visit.page.input_value("select[name='point']") == data["default_point"] == "confident"
    assert "confident (a wrong class at P ≥ 0.9)" in visit.page.inner_text(".lead")
    drawn = visit.page.eval_on_selector_all("#grid .mark", "els => els.map(e => e.className.replace('mark ', ''))")
    expected = outcome_counts(data, 0, "confident")
    for outcome in ("fooled", "not fooled", "wrong before"):
        assert drawn.count(outcome.replace(" ", "-")) == expected.get(outcome, 0), outcome
    assert expected["not fooled"] > 0 and expected["fooled"] > 0  # two outcomes, where the minimal point has one
    # Counts beside the options are the tables' counts with the other filters kept.
    fgsm = run.attacks[(run.attacks["model"] == "cnn-p0.2") & (run.attacks["attack"] == "fgsm")
                       & (run.attacks["operating_point"] == "confident")]
    not_fooled = int((fgsm["clean_correct"] & ~fgsm["success"]).sum())
    option = visit.page.eval_on_selector("select[name='outcome-fgsm'] option[value='not fooled']", "o => o.textContent")
    assert option == f"not fooled ({not_fooled})"
    labels = run.images["label"]
    assert visit.page.eval_on_selector("select[name='class'] option[value='3']", "o => o.textContent").endswith(
        f"({int((labels == 3).sum())})")
    # The point drives the outcome filter: not fooled at the minimal point is nobody (by construction).
    visit.page.select_option("select[name='outcome-fgsm']", "not fooled")
    wait_count(visit, not_fooled)
    minimal = run.attacks[(run.attacks["model"] == "cnn-p0.2") & (run.attacks["attack"] == "fgsm")
                          & (run.attacks["operating_point"] == "minimal")]
    assert not (minimal["clean_correct"] & ~minimal["success"]).any()
    visit.page.select_option("select[name='point']", "minimal")
    wait_count(visit, 0)
    assert "point=minimal" in visit.page.url
    # The empty state says so and clears the filters; the point stays.
    assert visit.page.is_visible("#grid-empty")
    assert "No image matches" in visit.page.inner_text("#grid-empty")
    visit.page.click("#grid-empty button")
    wait_count(visit, len(run.images))
    assert not visit.page.is_visible("#grid-empty")
    assert visit.page.input_value("select[name='point']") == "minimal"
    assert not visit.errors and not [m for m in visit.console if m[0] in ("error", "warning")]
    visit.page.close()


def test_explorer_drops_what_the_address_names_wrongly_and_says_so(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    visit = open_explorer(browser, fixture_site, "#class=99&point=eps9&outcome-nope=fooled&entropy=a..b&sort=entropy")
    wait_count(visit, len(run.images))  # nothing filtered: every bad value ignored, not an empty grid
    note = visit.page.inner_text("#explorer-note")
    for bad in ("class=99 (no such class)", "point=eps9 (no such operating point)", "outcome-nope=fooled (no such attack)",
                "entropy=NaN..NaN (not a range of numbers)"):
        assert bad in note, (bad, note)
    assert visit.page.input_value("select[name='class']") == ""  # the control and the grid agree
    assert visit.page.input_value("select[name='sort']") == "entropy"  # what was valid is kept
    assert "class=99" not in visit.page.url
    visit.page.close()


def test_the_id_search_finds_an_image_or_says_why_not(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    ids = run.images["image_id"].tolist()
    visit = open_explorer(browser, fixture_site)
    target = ids[-1]
    visit.page.fill("input[name='find-id']", str(target))
    visit.page.press("input[name='find-id']", "Enter")
    visit.page.wait_for_function(f"() => document.querySelector('#grid a.thumb.active').dataset.imageId === '{target}'")
    visit.page.fill("input[name='find-id']", "987654")
    visit.page.press("input[name='find-id']", "Enter")
    assert "No test image has id 987654" in visit.page.inner_text("#explorer-note")
    label = int(run.images.set_index("image_id")["label"][target])
    visit.page.select_option("select[name='class']", str((label + 1) % 10))
    visit.page.wait_for_function("() => location.hash.includes('class=')")
    visit.page.fill("input[name='find-id']", str(target))
    visit.page.press("input[name='find-id']", "Enter")
    assert f"Image #{target} is not among the images shown" in visit.page.inner_text("#explorer-note")
    assert f"id={target}" in visit.page.get_attribute("#explorer-note a", "href")
    visit.page.close()


def test_coming_back_from_an_image_keeps_the_place_and_the_model(browser, fixture_site):
    # A phone's width, so that the 40 images of the fixture need the grid to scroll.
    visit = open_explorer(browser, fixture_site, "#model=cnn-p0.3&sort=id", 390, 600)
    grid = visit.page.locator("#grid")
    assert grid.evaluate("g => g.scrollHeight > g.clientHeight")
    grid.evaluate("g => { g.scrollTop = g.scrollHeight; }")
    visit.page.wait_for_timeout(100)
    last = visit.page.eval_on_selector_all("#grid a.thumb", "els => els.map(e => Number(e.id.slice(5)))")
    cell = visit.page.locator(f"#cell-{max(last)}")
    picked = cell.get_attribute("data-image-id")
    cell.click()
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{picked}'")
    # The image view shows the model picked in the explorer, and its switch links are real links.
    assert visit.page.get_attribute("#image-view", "data-model") == "cnn-p0.3"
    switch = visit.page.eval_on_selector_all(".model-switch a", "els => els.map(a => a.getAttribute('href'))")
    assert len(switch) == 4 and all(h.startswith("#") and f"id={picked}" in h and "model=" in h for h in switch)
    # Back: the grid is scrolled to the same image, which is the active cell.
    visit.page.go_back()
    visit.page.wait_for_function(f"() => (document.querySelector('#grid a.thumb.active') || {{}}).dataset?.imageId === '{picked}'",
                                 timeout=10_000)
    assert grid.evaluate("g => g.scrollTop") > 0
    assert visit.page.input_value("select[name='model']") == "cnn-p0.3"
    # The image view's own way back does the same.
    visit.page.goto((fixture_site / "runs" / "tiny" / "image.html").as_uri() + f"#id={picked}&model=cnn-p0.3&sort=id")
    visit.page.wait_for_function("() => document.getElementById('image-back').href.includes('id=')")
    visit.page.click("#image-back")
    visit.page.wait_for_function(f"() => (document.querySelector('#grid a.thumb.active') || {{}}).dataset?.imageId === '{picked}'",
                                 timeout=10_000)
    visit.page.close()


def test_the_image_view_steps_with_the_arrow_keys_and_switches_models(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    ids = sorted(run.images["image_id"].tolist())
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + f"#id={ids[1]}&sort=id")
    view = "() => document.getElementById('image-view').getAttribute('data-image-id')"
    visit.page.wait_for_function(f"{view} === '{ids[1]}'")
    visit.page.wait_for_function("() => document.getElementById('image-next').hasAttribute('href')")
    visit.page.keyboard.press("ArrowRight")
    visit.page.wait_for_function(f"{view} === '{ids[2]}'")
    visit.page.wait_for_function(f"() => document.getElementById('image-prev').href.includes('id={ids[1]}&')")
    visit.page.keyboard.press("ArrowLeft")
    visit.page.wait_for_function(f"{view} === '{ids[1]}'")
    visit.page.click(".model-switch a:not([aria-current])")
    visit.page.wait_for_function("() => document.getElementById('image-view').getAttribute('data-model') === 'cnn-p0.3'")
    assert visit.page.eval_on_selector_all(".model", "els => els.map(e => e.dataset.model)") == ["cnn-p0.3"]
    assert "model=cnn-p0.3" in visit.page.get_attribute("#image-back", "href")
    assert not visit.errors
    visit.page.close()


def test_a_model_that_got_the_image_wrong_shows_one_line_not_rows_of_blanks(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    wrong = run.attacks[(run.attacks["model"] == "cnn-p0.2") & ~run.attacks["clean_correct"]]["image_id"].iloc[0]
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "image.html").as_uri() + f"#id={wrong}")
    visit.page.wait_for_function(f"() => document.getElementById('image-view').getAttribute('data-image-id') === '{wrong}'")
    assert visit.page.eval_on_selector_all(".attack-row", "els => els.length") == 0
    assert "Wrong before any attack" in visit.page.inner_text(".model .wrong-before")
    visit.page.close()


def mark_pixels(visit: Visit, outcome: str, path: Path) -> np.ndarray:
    from PIL import Image

    visit.page.locator(f"#grid-legend .mark.{outcome}").screenshot(path=str(path))
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def test_outcomes_stay_apart_under_simulated_deuteranopia(browser, fixture_site, tmp_path):
    """Fooled and not fooled differ by shape (filled against a ring) and, seen with deuteranopia, still by
    colour; a cross marks wrong before."""
    visit = open_explorer(browser, fixture_site)
    cdp = visit.page.context.new_cdp_session(visit.page)
    cdp.send("Emulation.setEmulatedVisionDeficiency", {"type": "deuteranopia"})
    visit.page.wait_for_timeout(100)
    fooled = mark_pixels(visit, "fooled", tmp_path / "f.png")
    ring = mark_pixels(visit, "not-fooled", tmp_path / "n.png")
    cross = mark_pixels(visit, "wrong-before", tmp_path / "w.png")
    ink = lambda px: px[px.sum(axis=2) < 600]  # noqa: E731  (the mark's coloured pixels, not the white page)
    assert np.linalg.norm(ink(fooled).mean(axis=0) - ink(ring).mean(axis=0)) > 60
    centre = lambda px: px[px.shape[0] // 2, px.shape[1] // 2]  # noqa: E731
    assert centre(fooled).sum() < 600 and centre(ring).sum() > 700  # filled against hollow
    assert len(ink(cross)) > 0 and centre(cross).sum() < 600  # the cross's arms meet in the middle
    visit.page.close()


def test_the_map_zooms_shows_a_thumbnail_dims_outside_the_brush_and_steps_from_the_keyboard(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    data = explorer_data.explorer_data(run)
    visit = open_explorer(browser, fixture_site, "#sort=id")
    box = map_box(visit)
    clean = data["models"][0]["maps"]["tsne"]["clean"]
    size, pad = 440, 8
    first = min(range(len(data["ids"])), key=lambda i: data["ids"][i])
    px = (pad + clean["x"][first] / data["grid"] * (size - 2 * pad), size - pad - clean["y"][first] / data["grid"] * (size - 2 * pad))
    visit.page.mouse.move(box[0] + px[0] * box[2] / size, box[1] + px[1] * box[3] / size)
    visit.page.wait_for_function("() => !document.getElementById('map-hover').hidden")
    assert visit.page.inner_text("#map-hover").startswith("#")
    assert visit.page.eval_on_selector("#map-hover .tile", "e => e.style.backgroundImage").startswith("url(")
    # Wheel zooms about the pointer; double-click resets.
    visit.page.mouse.wheel(0, -400)
    visit.page.wait_for_function("() => Number(document.getElementById('feature-map').dataset.zoom) > 1.5")
    visit.page.mouse.dblclick(box[0] + 5, box[1] + 5)
    visit.page.wait_for_function("() => document.getElementById('feature-map').dataset.zoom === '1.00'")
    # From the keyboard: arrows step through the shown images in the grid's order.
    visit.page.focus("#feature-map")
    order = grid_ids(visit)
    visit.page.keyboard.press("ArrowRight")
    visit.page.wait_for_function(f"() => document.getElementById('feature-map').dataset.selected === '{order[1]}'")
    # A brush dims the points it leaves out: fewer bright pixels than before, none removed.
    bright = "() => { const c = document.getElementById('feature-map'), p = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;" \
             " let n = 0; for (let i = 0; i < p.length; i += 4) if (p[i + 3] > 200 && (p[i] < 200 || p[i + 2] < 200)) n++; return n; }"
    visit.page.keyboard.press("Escape")
    visit.page.evaluate("() => window.robustviz.explorer.map.drawMap(null)")
    before = visit.page.evaluate(bright)
    visit.page.mouse.move(box[0] + box[2] * 0.05, box[1] + box[3] * 0.05)
    visit.page.mouse.down()
    visit.page.mouse.move(box[0] + box[2] * 0.4, box[1] + box[3] * 0.4, steps=4)
    visit.page.mouse.up()
    visit.page.wait_for_function("() => location.hash.includes('brush=')")
    visit.page.mouse.move(1, 1)
    visit.page.evaluate("() => window.robustviz.explorer.map.drawMap(null)")
    after = visit.page.evaluate(bright)
    assert 0 < after < before
    assert not visit.errors
    visit.page.close()


def test_good_and_bad_shows_the_adversarial_on_hover(browser, fixture_site):
    visit = Visit(browser, (fixture_site / "runs" / "tiny" / "good-bad.html").as_uri())
    card = visit.page.locator("a.thumb-static.vulnerable:has(.adv)").first
    adv = card.locator(".adv")
    assert adv.evaluate("e => getComputedStyle(e).visibility") == "hidden"
    card.hover()
    assert adv.evaluate("e => getComputedStyle(e).visibility") == "visible"
    assert "→" in card.locator(".becomes").inner_text()
    # The attack switch: one table per attack, the ranking attack's by default, another by its link.
    section = visit.page.locator("section[data-model='cnn-p0.2']")
    shown = "els => els.filter(e => !e.hidden).map(e => e.dataset.attack)"
    assert section.locator(".gb-attack").evaluate_all(shown) == ["fgsm"]
    section.locator(".attack-switch a", has_text="L-BFGS").click()
    visit.page.wait_for_function("() => location.hash === '#cnn-p0.2-lbfgs'")
    assert section.locator(".gb-attack").evaluate_all(shown) == ["lbfgs"]
    assert section.locator(".attack-switch a[aria-current]").inner_text() == "L-BFGS"
    assert section.locator(".gb-attack:not([hidden]) .caption").first.inner_text().split("\n")[-1].startswith(("L2 = ", "never"))
    other = visit.page.locator("section[data-model='cnn-p0.3'] .gb-attack").evaluate_all(shown)
    assert other == ["fgsm"]  # the other model keeps its own pick
    # The operating point: the confident adversarials of the attack shown; the attack links then keep it.
    ids = "els => els.filter(e => !e.hidden).map(e => e.id)"
    section.locator(".point-switch a[data-point='confident']").click()
    visit.page.wait_for_function("() => location.hash === '#cnn-p0.2-lbfgs-confident'")
    assert section.locator(".gb-attack").evaluate_all(ids) == ["cnn-p0.2-lbfgs-confident"]
    assert section.locator(".point-switch a[aria-current]").get_attribute("data-point") == "confident"
    section.locator(".attack-switch a", has_text="FGSM").click()
    visit.page.wait_for_function("() => location.hash === '#cnn-p0.2-fgsm-confident'")
    assert section.locator(".gb-attack").evaluate_all(ids) == ["cnn-p0.2-fgsm-confident"]
    section.locator(".point-switch a[data-point='minimal']").click()
    visit.page.wait_for_function("() => location.hash === '#cnn-p0.2-fgsm'")
    assert section.locator(".gb-attack").evaluate_all(ids) == ["cnn-p0.2-fgsm"]
    visit.page.close()


AXE = Path(__file__).resolve().parent / ".cache" / "node_modules" / "axe-core" / "axe.min.js"  # make axe


def test_no_page_has_an_accessibility_violation_axe_finds_and_each_starts_with_a_skip_link(browser, fixture_site):
    """axe-core (from npm, installed for the tests only, never into the site) finds no WCAG 2 A or AA
    violation, contrast included, on any page at 1,440 px; the first Tab reaches a skip link whose target exists."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `make axe` (npm install --prefix tests/.cache axe-core)")
    found = {}
    for path in site_pages(fixture_site):
        page = browser.new_page(viewport={"width": 1440, "height": 900}, bypass_csp=True)  # axe is injected, not shipped
        page.goto(path.as_uri())
        page.wait_for_function("() => [...document.querySelectorAll('.chart')].every(e => e.hasAttribute('data-rendered'))"
                               " && (!document.getElementById('grid') || document.getElementById('grid').dataset.rendered === 'true')"
                               " && (!document.getElementById('image-view') || document.getElementById('image-view').hasAttribute('data-image-id'))",
                               timeout=30_000)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate("async () => (await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}))"
                                   ".violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', '))")
        if violations:
            found[path.name] = violations
        page.keyboard.press("Tab")
        skip = page.evaluate("() => { const a = document.activeElement; return a.classList.contains('skip-link') &&"
                             " !!document.querySelector(a.getAttribute('href')); }")
        assert skip, f"{path.name}: the first Tab does not reach a skip link with a target"
        page.close()
    assert found == {}, found


def test_the_overview_leads_with_results_whose_numbers_open_the_views_behind_them(browser, fixture_site):
    """Three of the table's links followed (clean accuracy, FGSM at ε = 0.1, detection Δ), and a sort."""
    run = load_run(RESULTS_FIXTURE)
    key = run.model_keys[1]
    visit = Visit(browser, (fixture_site / "index.html").as_uri())
    page = visit.page
    assert page.locator("ul.headline li").count() >= 2
    row = page.locator("table.leaderboard tbody tr", has_text=run.model(key)["label"])
    headings = page.eval_on_selector_all("table.leaderboard thead th", "ths => ths.map(t => t.textContent.trim())")
    shown = row.locator("td").all_inner_texts()
    assert shown[headings.index("clean accuracy") - 1] == f"{run.model(key)['accuracy']:.1%}"
    fgsm = run.robustness[(run.robustness["model"] == key) & np.isclose(run.robustness["eps"], 0.1)].iloc[0]
    assert shown[headings.index("accuracy under FGSM ε = 0.1") - 1] == f"{fgsm['accuracy']:.1%}"

    def follow(column: str) -> None:
        page.goto((fixture_site / "index.html").as_uri())
        page.locator("table.leaderboard tbody tr", has_text=run.model(key)["label"]).locator("td").nth(
            headings.index(column) - 1).locator("a").click()
        page.wait_for_load_state()

    follow("clean accuracy")
    assert page.url.endswith(f"runs/tiny/uncertainty.html#{key}") and page.locator(f"[id='{key}']").count() == 1
    follow("accuracy under FGSM ε = 0.1")
    assert "explorer.html#" in page.url
    page.wait_for_function("() => document.querySelector('#grid').hasAttribute('data-count')", timeout=30_000)
    assert page.eval_on_selector("select[name='model']", "s => s.value") == key
    assert page.eval_on_selector("select[name='point']", "s => s.value") == "eps0.1"
    follow("AUROC Δ, entropy − softmax, FGSM confident [95%]")
    assert page.url.endswith(f"runs/tiny/detection.html#{key}") and page.locator(f"[id='{key}']").count() == 1
    assert page.locator(f"[id='{key}']").is_visible()  # the model switch opens the linked model's section
    # A heading sorts the rows by its numbers; pressed again, the other way.
    page.goto((fixture_site / "index.html").as_uri())
    column = headings.index("accuracy under FGSM ε = 0.3")
    button = page.locator(f"table.leaderboard thead button[data-sort-column='{column}']")
    values = lambda: page.eval_on_selector_all(  # noqa: E731
        f"table.leaderboard tbody tr td:nth-child({column + 1})", "tds => tds.map(t => Number(t.dataset.sort))")
    button.click()
    assert values() == sorted(values())
    button.click()
    assert values() == sorted(values(), reverse=True)
    assert not visit.errors


def test_the_explorer_exports_its_filtered_selection_as_csv_matching_the_tables(browser, fixture_site, tmp_path):
    import io

    run = load_run(RESULTS_FIXTURE)
    key = run.model_keys[1]
    visit = open_explorer(browser, fixture_site, f"#model={key}&point=minimal&outcome-fgsm=fooled&sort=entropy&dir=desc")
    with visit.page.expect_download() as info:
        visit.page.click("button.export-csv")
    path = tmp_path / "selection.csv"
    info.value.save_as(path)
    assert info.value.suggested_filename == f"explorer-{key}-minimal.csv"
    table = pd.read_csv(path)
    att = run.attacks[(run.attacks["model"] == key) & (run.attacks["attack"] == "fgsm")
                      & (run.attacks["operating_point"] == "minimal") & run.attacks["success"]]
    assert sorted(table["image_id"]) == sorted(att["image_id"]) and len(table) > 0
    assert table["image_id"].tolist() == grid_ids(visit)  # the grid's order: entropy, descending
    assert (table["outcome_fgsm"] == "fooled").all() and (table["model"] == key).all()
    clean = run.uncertainty[(run.uncertainty["model"] == key) & (run.uncertainty["condition"] == "clean")].set_index("image_id")
    names = run.class_names
    ids = table["image_id"]
    assert table["label"].astype(str).tolist() == [names[v] for v in clean.loc[ids, "label"]]
    assert table["plain_pred"].astype(str).tolist() == [names[v] for v in clean.loc[ids, "plain_pred"]]
    assert np.allclose(table["entropy"], clean.loc[ids, "entropy"], atol=1e-4)
    assert np.allclose(table["max_prob"], clean.loc[ids, "max_prob"], atol=1e-4)
    eps = att.set_index("image_id").loc[ids, "min_eps"]
    assert np.allclose(table["ranking_fgsm"], eps, atol=1e-4)
    assert table["entropy"].is_monotonic_decreasing


def test_picking_a_second_model_shows_the_images_an_attack_fools_on_only_one_of_them(browser, fixture_site):
    run = load_run(RESULTS_FIXTURE)
    visit = open_explorer(browser, fixture_site, "#model=cnn-p0.2&point=confident&sort=id")
    visit.page.select_option("select[name='versus']", "cnn-p0.3")
    visit.page.select_option("select[name='differs']", "fgsm")
    att = run.attacks[(run.attacks["attack"] == "fgsm") & (run.attacks["operating_point"] == "confident")]
    o = pd.DataFrame({k: att[att["model"] == k].set_index("image_id").pipe(lambda r: r["success"].where(r["clean_correct"]))
                      for k in ("cnn-p0.2", "cnn-p0.3")}).dropna()
    expected = sorted(o.index[o["cnn-p0.2"] != o["cnn-p0.3"]])
    wait_count(visit, len(expected))
    assert sorted(grid_ids(visit)) == expected
    assert "versus=cnn-p0.3" in visit.page.url and "differs=fgsm" in visit.page.url
    label = visit.page.eval_on_selector("select[name='differs'] option[value='fgsm']", "o => o.textContent")
    assert label.endswith(f"({len(expected)})")
    # The export carries the second model's outcomes beside the first's: they differ on every row.
    with visit.page.expect_download() as info:
        visit.page.click("button.export-csv")
    table = pd.read_csv(info.value.path())
    assert table["image_id"].tolist() == expected
    assert (table["outcome_fgsm"] != table["outcome_fgsm_cnn-p0.3"]).all()
    assert set(table["outcome_fgsm"]) <= {"fooled", "not fooled"}
    assert not visit.errors


@pytest.mark.parametrize("name", ["uncertainty", "attacks", "detection"])
def test_a_models_section_is_picked_by_the_switch_or_the_address_and_drawn_to_fit(browser, fixture_site, name):
    """One model's section at a time under the cross-model charts; the others hidden, not repeated."""
    run = load_run(RESULTS_FIXTURE)
    first, second = run.model_keys[:2]
    url = (fixture_site / "runs" / "tiny" / f"{name}.html").as_uri()
    visit = Visit(browser, url)
    page = visit.page
    visible = lambda: page.eval_on_selector_all(  # noqa: E731
        "section[data-model-section]", "ss => ss.filter(s => !s.hidden).map(s => s.id)")
    assert visible() == [first]
    page.click(f"nav.model-switch a[data-model='{second}']")
    assert visible() == [second] and page.url.endswith(f"#{second}")
    assert page.get_attribute(f"nav.model-switch a[data-model='{second}']", "aria-current") == "true"
    # the chart drawn while hidden is fitted once shown: as wide as it can be, never wider than its room
    page.wait_for_function(f"() => {{ const el = document.querySelector(\"[data-spec='spec-{second}']\");"
                           f" const c = el && el.querySelector('canvas');"
                           f" return c && c.getBoundingClientRect().width > 100"
                           f" && c.getBoundingClientRect().width <= el.clientWidth + 1; }}", timeout=30_000)
    again = Visit(browser, f"{url}#{second}")
    assert again.page.eval_on_selector_all("section[data-model-section]",
                                           "ss => ss.filter(s => !s.hidden).map(s => s.id)") == [second]
    assert page.locator("[data-spec$='-models'], [data-spec='spec-summary']").count() == 1  # the cross-model chart
    assert not visit.errors and not again.errors
    page.close()
    again.page.close()
