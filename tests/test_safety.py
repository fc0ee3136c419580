"""The site is safe to host: text from data shows as text, the CSP allows only the site's files,
and the preview server stays on this machine. Uses an STL-10 run (AlexNet) with hostile class names."""
from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape

from compute import config, pipeline
from site_builder.build import build_site
from site_builder.render import CSP
from site_builder.serve import make_server
from conftest import CHROMIUM, CHROMIUM_FLAGS, write_stl10

HOSTILE = ["</script><img src=x onerror=alert(1)>", "\"><svg onload=alert(2)>", "' onmouseover='alert(3)"]


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_stl10(root / "data", n_train=24, n_test=6)
    (root / "data" / "stl10_binary" / "class_names.txt").write_text("\n".join(HOSTILE) + "\n")
    cfg = config.from_dict({
        "name": "hostile", "out": str(root / "out"),
        "data": {"name": "stl10", "root": str(root / "data")},
        "model": {"dropout": [0.5]}, "train": {"epochs": 1, "batch_size": 8},
        "uncertainty": {"passes": 3, "batch_size": 6, "methods": ["mc_dropout"]},
        "attacks": {"enabled": ["fgsm", "iaa"], "batch_size": 6, "iaa": {"max_iterations": 5}},
    })
    pipeline.train_all(cfg, progress=False)
    pipeline.compute(cfg, progress=False)
    build_site([cfg.results_dir], cfg.site_dir)
    return cfg.site_dir


def test_hostile_text_is_escaped_in_html_and_inline_json(hostile_site):
    for page in hostile_site.rglob("*.html"):
        html = page.read_text()
        assert "<img src=x" not in html and "<svg onload" not in html, page.name
        assert "</script><img" not in html, page.name
    uncertainty = (hostile_site / "runs" / "hostile" / "uncertainty.html").read_text()
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in uncertainty  # shown, as text


def test_every_page_has_the_csp_and_no_inline_handlers(hostile_site, tiny_run):
    pages = list(hostile_site.rglob("*.html")) + list(tiny_run.site_dir.rglob("*.html"))
    for page in pages:
        html = page.read_text()
        assert f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">' in html, page
        tags = start_tags(html)
        assert not [(t, a) for t, attrs in tags for a, _ in attrs if a.startswith("on")], page  # no onclick= ...
        for tag, attrs in tags:
            if tag == "script":  # only files of the site, or inert JSON data
                names = dict(attrs)
                assert "src" in names or names.get("type") == "application/json", (page, attrs)
    assert "'unsafe-eval'" not in CSP and "http" not in CSP and "script-src 'self'" in CSP


def start_tags(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):  # noqa: ANN001
            found.append((tag, attrs))

    Collect().feed(html)
    return found


def test_hostile_class_names_run_nothing_in_the_browser(hostile_site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        for page_path in sorted(hostile_site.rglob("*.html")):
            page = browser.new_page()
            dialogs, errors, console = [], [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: console.append((m.type, m.text)))
            url = page_path.as_uri() + ("#id=0" if page_path.name == "image.html" else "")
            page.goto(url)
            page.wait_for_function("() => [...document.querySelectorAll('.chart')]"
                                   ".every(e => e.hasAttribute('data-rendered'))", timeout=30_000)
            if page_path.name == "image.html":
                page.wait_for_function("() => document.getElementById('image-view').hasAttribute('data-image-id')")
                assert any(name in page.inner_text("#image-title") for name in HOSTILE)
            rendered = page.eval_on_selector_all(".chart", "els => els.map(e => e.getAttribute('data-rendered'))")
            assert all(r == "true" for r in rendered), (page_path.name, rendered)
            page.mouse.move(200, 200)
            page.wait_for_timeout(100)
            assert not dialogs and not errors, (page_path.name, dialogs, errors)
            assert not [m for m in console if m[0] == "error"], (page_path.name, console)
            if page_path.name == "uncertainty.html":
                assert HOSTILE[0] in page.inner_text("main")
            page.close()
        browser.close()


def test_preview_server_binds_to_this_machine_only(tiny_run):
    server = make_server(tiny_run.site_dir, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    with pytest.raises(FileNotFoundError, match="build the site first"):
        make_server(Path("/nonexistent"), port=0)
