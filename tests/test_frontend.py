"""The front end's pure functions (static/explorer-state.js: parse, settle, format, select, counts),
run directly in Node (the one Playwright ships with, so nothing else is installed) on the fixture's
explorer data, and checked against the tables."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import RESULTS_FIXTURE, ROOT
from site_builder import explorer_data
from site_builder.load import load_run

# Loads explorer-state.js into a window-less Node, then answers each request: [hash, what] -> result.
RUNNER = """
const fs = require('fs');
global.window = {};
eval(fs.readFileSync(process.argv[2], 'utf8'));
const S = window.robustviz.state;
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const d = input.data;
const out = input.asks.map(([hash, what]) => {
  const s = S.settle(d, S.parse(hash));
  if (what === 'select') return S.select(d, s, false).map(i => d.ids[i]);
  if (what.startsWith('counts:')) return S.counts(d, s, what.slice(7));
  if (what === 'format') return S.format(s, s.id);
  if (what === 'describe') return S.describe(d, s);
  return {model: s.model, point: s.point, sort: s.sort, dir: s.dir, map: s.map, colour: s.colour,
          filters: s.filters, ranges: s.ranges, brush: s.brush, id: s.id, dropped: s.dropped};
});
process.stdout.write(JSON.stringify(out));
"""


def node() -> str:
    from playwright._impl._driver import compute_driver_executable

    executable = compute_driver_executable()[0]
    if not Path(executable).exists():
        pytest.fail(f"Playwright's Node is missing at {executable}: pip install playwright (the test extra)")
    return executable


@pytest.fixture(scope="module")
def run():
    return load_run(RESULTS_FIXTURE)


@pytest.fixture(scope="module")
def data(run):
    return explorer_data.explorer_data(run)


def ask(data: dict, asks: list[tuple[str, str]], tmp_path: Path) -> list:
    script = tmp_path / "runner.js"
    script.write_text(RUNNER)
    done = subprocess.run([node(), str(script), str(ROOT / "static" / "explorer-state.js")],
                          input=json.dumps({"data": data, "asks": asks}), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_settle_keeps_what_names_something_and_drops_the_rest_with_a_reason(data, tmp_path):
    good, bad, empty = ask(data, [
        ("#model=cnn-p0.3&point=eps0.1&sort=entropy&dir=desc&class=3&error=1&outcome-fgsm=fooled&entropy=0.1..&id=7", ""),
        ("#model=zzz&point=eps9&sort=nope&dir=up&class=99&plain_pred=-1&error=2&outcome-nope=fooled"
         "&outcome-fgsm=maybe&entropy=a..b&brush=1,2,3&colour=rainbow&map=umap", ""),
        ("", "")], tmp_path)
    assert good["dropped"] == []
    assert (good["model"], good["point"], good["sort"], good["dir"]) == ("cnn-p0.3", "eps0.1", "entropy", "desc")
    assert good["filters"] == {"class": 3, "error": 1, "outcome-fgsm": "fooled"}  # indices as numbers
    assert good["ranges"] == {"entropy": [0.1, None]} and good["id"] == 7
    assert bad["dropped"] == [
        "model=zzz (no such model)", "point=eps9 (no such operating point)", "sort=nope (no such sort)",
        "dir=up (asc or desc)", "brush=1,2,3 (four numbers)", "map=umap (no such map)", "colour=rainbow (no such colouring)",
        "class=99 (no such class)", "plain_pred=-1 (no such class)", "error=2 (0 or 1)",
        "outcome-nope=fooled (no such attack)", "outcome-fgsm=maybe (no such outcome)",
        "entropy=NaN..NaN (not a range of numbers)"]
    assert bad["filters"] == {} and bad["ranges"] == {} and bad["brush"] is None
    # Defaults: the first model, the data's default point, the ranking sort.
    assert (empty["model"], empty["point"], empty["sort"]) == ("cnn-p0.2", data["default_point"], "ranking")
    assert empty["dropped"] == []


def test_format_and_parse_round_trip(data, tmp_path):
    hashes = ["#model=cnn-p0.3&point=eps0.2&sort=entropy&dir=desc&class=3&outcome-pgd=not+fooled&entropy=0.1..0.5&brush=1%2C2%2C300%2C400"]
    first = ask(data, [(h, "format") for h in hashes], tmp_path)
    again = ask(data, [(h, "format") for h in first], tmp_path)
    assert again == first
    state = ask(data, [(first[0], "")], tmp_path)[0]
    assert state["filters"] == {"class": 3, "outcome-pgd": "not fooled"} and state["brush"] == [1, 2, 300, 400]


def expected_ids(run, data, model: str, point: str, filters: dict, entropy_lo: float | None = None) -> list[int]:
    """The images a state selects, from the tables: in image-id order (sort=id)."""
    m = next(x for x in data["models"] if x["key"] == model)
    named = {v: k for k, v in data["outcomes"].items()}
    out = []
    for i, image_id in enumerate(data["ids"]):
        if "class" in filters and data["labels"][i] != filters["class"]:
            continue
        if "error" in filters and int(m["plain_pred"][i] != data["labels"][i]) != filters["error"]:
            continue
        if any(named[m["outcomes"][point][k[8:]][i]] != v for k, v in filters.items() if k.startswith("outcome-")):
            continue
        if entropy_lo is not None and m["entropy"][i] / data["scale"] < entropy_lo:
            continue
        out.append(image_id)
    return sorted(out)


def test_select_and_counts_agree_with_the_tables(run, data, tmp_path):
    asks = [("#sort=id&model=cnn-p0.3&point=eps0.1&outcome-fgsm=not+fooled", "select"),
            ("#sort=id&point=confident&outcome-pgd=fooled&error=0", "select"),
            ("#sort=id&class=3&entropy=0.05..", "select"),
            ("#sort=id&point=confident&class=3", "counts:outcome-fgsm"),
            ("#sort=id&point=confident&outcome-fgsm=fooled", "counts:class")]
    a, b, c, fgsm_counts, class_counts = ask(data, asks, tmp_path)
    assert a == expected_ids(run, data, "cnn-p0.3", "eps0.1", {"outcome-fgsm": "not fooled"}) and a
    assert b == expected_ids(run, data, "cnn-p0.2", "confident", {"outcome-pgd": "fooled", "error": 0}) and b
    assert c == expected_ids(run, data, "cnn-p0.2", "confident", {"class": 3}, 0.05)
    # counts: the class filter kept, the fgsm one left out; and the other way round.
    rows = run.attacks[(run.attacks["model"] == "cnn-p0.2") & (run.attacks["attack"] == "fgsm")
                       & (run.attacks["operating_point"] == "confident")]
    rows = rows[rows["image_id"].map(run.images.set_index("image_id")["label"]) == 3]
    assert fgsm_counts[""] == len(rows)
    assert fgsm_counts.get("fooled", 0) == int(rows["success"].sum())
    assert fgsm_counts.get("not fooled", 0) == int((rows["clean_correct"] & ~rows["success"]).sum())
    fooled = expected_ids(run, data, "cnn-p0.2", "confident", {"outcome-fgsm": "fooled"})
    labels = run.images.set_index("image_id")["label"]
    assert class_counts[""] == len(fooled)
    assert {int(k): v for k, v in class_counts.items() if k != ""} == labels[fooled].value_counts().to_dict()


def test_the_filters_are_described_in_words_for_the_count_line_and_the_empty_state(data, tmp_path):
    words, none = ask(data, [("#point=minimal&class=3&error=1&outcome-fgsm=not+fooled&entropy=0.1..0.5&brush=1,2,3,4", "describe"),
                             ("#class=99", "describe")], tmp_path)
    assert words == ["class 3", "clean prediction wrong", "FGSM not fooled at the minimal point",
                     "entropy ≥ 0.1 and ≤ 0.5", "a brush on the map"]
    assert none == []  # a dropped value filters nothing, so it is not described


NARROW = """
const fs = require('fs');
global.window = {};
eval(fs.readFileSync(process.argv[2], 'utf8'));
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const before = JSON.stringify(input.spec);
const out = window.robustviz.narrow(input.spec, input.width);
process.stdout.write(JSON.stringify({out: out, original: input.spec, unchanged: JSON.stringify(input.spec) === before,
                                     shared: out.datasets === input.spec.datasets}));
"""


def views(node, path=()):
    """Every (path, dict) of a spec, data left out."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in ("datasets", "data"):
                yield from views(value, path + (key,))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            yield from views(value, path + (k,))


@pytest.mark.parametrize("page", ["attacks", "detection", "uncertainty", "summary", "findings"])
def test_a_dashboard_narrowed_for_a_phone_is_one_column_of_views_no_wider_than_the_room(run, page, tmp_path):
    """static/chart-fit.js ``narrow``: what a chart wider than its container is redrawn as (site.js)."""
    import altair as alt

    from site_builder import pages

    made = {"attacks": pages.attacks_page, "detection": pages.detection_page, "uncertainty": pages.uncertainty_page}
    with alt.data_transformers.disable_max_rows():  # as the build renders them
        if page == "summary":  # a facet by the column channel: accuracy and ECE per model
            specs = [json.loads(str(pages.uncertainty_page(run).context["summary_spec"]))]
        elif page == "findings":  # wrapped facets (``columns``) of the findings cards' interval panels
            ctx = pages.findings_page(run).context
            specs = [json.loads(str(v)) for v in (ctx["b"]["spec_perceptible"], ctx["b"]["spec_robust"],
                                                   ctx["c"]["spec"], ctx["d"]["spec"])]
        else:
            specs = [json.loads(str(section["spec"])) for section in made[page](run).context["sections"]]
    assert specs, page
    script = tmp_path / "narrow.js"
    script.write_text(NARROW)
    for spec in specs:
        done = subprocess.run([node(), str(script), str(ROOT / "static" / "chart-fit.js")],
                              input=json.dumps({"spec": spec, "width": 230}), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]
        answer = json.loads(done.stdout)
        out = answer["out"]
        assert answer["unchanged"] and answer["shared"]  # the original is kept for a wider screen; data not copied
        nodes = list(views(out))
        assert not [p for p, n in nodes if "hconcat" in n or ("facet" in n and "column" in n["facet"])
                    or "column" in n.get("encoding", {})]
        # A wrapped facet or concat is one panel wide: without ``columns`` Vega-Lite lays every panel in one row.
        wrapped = [n for p, n in nodes if ("facet" in n and "spec" in n) or "concat" in n]
        wrapped += [n["encoding"]["facet"] for p, n in nodes if "facet" in n.get("encoding", {})]
        assert all(n.get("columns") == 1 for n in wrapped), [n.get("columns") for n in wrapped]
        widths = [n["width"] for p, n in nodes if "width" in n and p[-1:] != ("config",)]
        assert widths and all(w == 230 or (isinstance(w, (int, float)) and w <= 230) for w in widths), widths
        legend = out["config"]["legend"]
        assert legend["orient"] == "bottom" and legend["columns"] == 1  # 230 px: one column of entries
        # A colour ramp lies along the plot: a legend's "direction" would stand it upright, as tall as a plot.
        assert legend["gradientDirection"] == "horizontal" and "direction" not in legend
        # Nothing but the layout changed: the same marks, encodings and selections, in the same order.
        # (a column channel becomes a wrapped facet channel on the same field: compared apart)
        def marks(s):
            # (an x axis title may be wrapped into lines: compared as its words)
            def channel(k, v):
                if k == "x" and isinstance(v, dict) and isinstance(v.get("title"), list):
                    return {**v, "title": " ".join(v["title"])}
                return v
            return [json.dumps({k: channel(k, v) for k, v in (n.get("encoding") or {}).items()
                                if k not in ("column", "facet")}, sort_keys=True) for p, n in views(s) if "mark" in n]

        def split_by(s):
            return [((n.get("encoding") or {}).get("column") or (n.get("encoding") or {}).get("facet") or {}).get("field")
                    for p, n in views(s) if "mark" in n]
        assert marks(out) == marks(answer["original"])
        # x axis titles fit their plot: 250 px less the room for a character of 6 px, 41 characters a line
        x_titles = [n["encoding"]["x"]["title"] for p, n in views(out)
                    if isinstance((n.get("encoding") or {}).get("x"), dict) and "title" in n["encoding"]["x"]]
        assert all(len(line) <= 41 for t in x_titles if isinstance(t, list) for line in t), x_titles
        assert all(t is None or isinstance(t, list) or len(t) <= 41 for t in x_titles), x_titles
        assert split_by(out) == split_by(answer["original"])
        params = lambda s: sorted(p["name"] for _, n in views(s) for p in n.get("params", []))  # noqa: E731
        assert params(out) == params(answer["original"])
        # A title that follows a pick (its lines in a ``*_lines`` parameter) is re-wrapped to the room
        # (350 px, 300 for the text: 42 characters at the title font), keeping every word.
        picked = lambda s: {p["name"]: p["value"] for _, n in views(s) for p in n.get("params", [])  # noqa: E731
                            if p["name"].endswith("_lines")}
        if page == "detection":
            assert set(picked(out)) == {"roc_lines", "risk_lines"}
        for name, table in picked(out).items():
            before = picked(answer["original"])[name]
            assert table.keys() == before.keys()
            for variant, lines in table.items():
                assert all(len(line) <= 42 for line in lines), (name, variant, lines)
                assert " ".join(lines).split() == " ".join(before[variant]).split()
            assert any(len(line) > 42 for lines in before.values() for line in lines)  # there was something to wrap


def test_outcome_differs_between_models_selects_the_images_one_resists_and_the_other_does_not(run, data, tmp_path):
    """``versus`` and ``differs``: FGSM at the confident point fools the image on one model and not the
    other (both attacked it); recomputed from the attacks table."""
    asks = [("#sort=id&model=cnn-p0.2&versus=cnn-p0.3&point=confident&differs=fgsm", "select"),
            ("#sort=id&model=cnn-p0.2&versus=cnn-p0.3&point=confident", "counts:differs"),
            ("#model=cnn-p0.2&versus=cnn-p0.2&differs=fgsm", ""),
            ("#model=cnn-p0.2&differs=fgsm", ""),
            ("#model=cnn-p0.2&versus=cnn-p0.3&differs=nope", ""),
            ("#sort=id&model=cnn-p0.2&versus=cnn-p0.3&point=confident&differs=fgsm", "describe")]
    chosen, counts, same, alone, unknown, words = ask(data, asks, tmp_path)
    att = run.attacks[(run.attacks["attack"] == "fgsm") & (run.attacks["operating_point"] == "confident")]
    outcome = {}
    for key in ("cnn-p0.2", "cnn-p0.3"):
        rows = att[att["model"] == key].set_index("image_id")
        outcome[key] = rows["success"].where(rows["clean_correct"])  # NaN: wrong before the attack
    both = pd.DataFrame(outcome).dropna()
    expected = sorted(both.index[both["cnn-p0.2"] != both["cnn-p0.3"]].tolist())
    assert chosen == expected and chosen  # the fixture has such images
    assert counts["fgsm"] == len(expected) and counts[""] == len(data["ids"])
    for a in data["attacks"]:  # each option counts the images that differ for it
        rows = run.attacks[(run.attacks["attack"] == a) & (run.attacks["operating_point"] == "confident")]
        if rows.empty:
            continue
        per = {k: rows[rows["model"] == k].set_index("image_id") for k in ("cnn-p0.2", "cnn-p0.3")}
        o = pd.DataFrame({k: r["success"].where(r["clean_correct"]) for k, r in per.items()}).dropna()
        assert counts.get(a, 0) == int((o["cnn-p0.2"] != o["cnn-p0.3"]).sum()), a
    assert same["dropped"] == ["versus=cnn-p0.2 (no other model of that key)",
                               "differs=fgsm (needs versus=, the model to compare with)"]
    assert alone["dropped"] == ["differs=fgsm (needs versus=, the model to compare with)"] and alone["filters"] == {}
    assert unknown["dropped"] == ["differs=nope (no such attack)"]
    assert words == ["FGSM fools one of this model and MC dropout p = 0.3, not the other"]
