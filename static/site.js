// Draws every chart on the page. Specs sit in <script type="application/json"> elements (inline
// data works from file://, where fetch() of a local file does not); each container says which.
(function () {
  "use strict";
  var R = window.robustviz = window.robustviz || {};
  R.views = {};  // every drawn Vega view by its container's id: for the browser test and the console

  function fail(el, err) {
    el.setAttribute("data-rendered", "error");
    el.textContent = "This chart could not be drawn: " + (err && err.message ? err.message : err);
    console.error(err);
  }

  // site_builder/render.py `packed`: base64 of raw-deflated JSON, opened with the browser's own
  // DecompressionStream (no fetch, no eval: it works from file:// under the CSP). Resolves to the data.
  function unpack(text) {
    var raw = atob(text), bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    return new Response(stream).text().then(JSON.parse);
  }
  R.unpack = unpack;

  // Datasets are stored packed, by columns, to keep pages small; Vega wants one object per row.
  function expandDatasets(spec) {
    var sets = spec.datasets || {};
    var names = Object.keys(sets).filter(function (name) { return sets[name] && sets[name].packed; });
    return Promise.all(names.map(function (name) {
      return unpack(sets[name].packed).then(function (columns) { sets[name] = rows(columns); });
    })).then(function () { return spec; });
  }

  function rows(columns) {
    var keys = Object.keys(columns);
    var count = keys.length ? columns[keys[0]].length : 0;
    var out = new Array(count);
    for (var i = 0; i < count; i++) {
      var row = {};
      for (var k = 0; k < keys.length; k++) row[keys[k]] = columns[keys[k]][i];
      out[i] = row;
    }
    return out;
  }

  function embed(el, spec) {
    return window.vegaEmbed(el, spec, {
      ast: true,  // evaluate Vega expressions with the interpreter: no eval, so the CSP can forbid it
      renderer: "canvas",
      actions: { export: true, source: false, compiled: false, editor: false }
    });
  }

  // The width a drawn chart takes: its canvas and vega-embed's padding (the actions menu's room).
  // The .chart element itself is a block as wide as its container (style.css), so that its width
  // is the room there is, whatever was drawn in it.
  function drawnWidth(el) {
    var canvas = el.querySelector("canvas, svg");
    if (!canvas) return el.scrollWidth;
    var style = window.getComputedStyle(el);
    return canvas.getBoundingClientRect().width + parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  }

  // Draw ``spec`` as written; where it is wider than its container, redraw it narrowed
  // (chart-fit.js) to the room left, three times at most. A container not laid out (a closed fold) has no
  // width yet: it is fitted when it gets one (``refit``). Resolves to vega-embed's result.
  function fit(el, spec) {
    var room = el.clientWidth;
    el.robustvizFit = { spec: spec, room: room, narrowed: false };
    return embed(el, spec).then(function (result) {
      var natural = el.robustvizFit.natural = drawnWidth(el);
      if (room === 0 || natural - room <= 1 || !R.narrow) return result;
      return shrink(el, spec, result, room - 120, room, 3);
    });
  }

  // Each try takes what still overflows off the views' width and off the titles' room alike (a chart is
  // as wide as its widest view or title), so that one more try is usually enough.
  function shrink(el, spec, previous, width, room, tries) {
    previous.finalize();
    el.robustvizFit.narrowed = true;
    return embed(el, R.narrow(spec, Math.max(width, 80), room)).then(function (result) {
      var over = drawnWidth(el) - el.clientWidth;
      if (over <= 1 || tries <= 1 || width <= 80) return result;
      return shrink(el, spec, result, width - over - 4, room - over - 4, tries - 1);
    });
  }

  // A chart's point selections (a picked row, picked legend entries) live in the address,
  // ?pick.<chart id>=<their stores as JSON>, so that a copied link opens the chart with the same picks;
  // the hash is left to the page's anchors (#cnn-p0.2). An interval brush is not kept: its pixels belong
  // to the layout it was drawn in.
  function chartId(el) {
    return el.id || el.getAttribute("data-spec");
  }

  function savedPicks(el) {
    var text = new URLSearchParams(window.location.search).get("pick." + chartId(el));
    if (!text) return null;
    try { return JSON.parse(text); } catch (err) { return null; }  // a hand-edited address: ignored
  }

  function rememberPicks(el) {
    var q = new URLSearchParams(window.location.search);
    q.set("pick." + chartId(el), JSON.stringify(picks(el)));
    try {
      window.history.replaceState(window.history.state, "", "?" + q.toString() + window.location.hash);
    } catch (err) { /* a browser that refuses to rewrite a file:// address: the picks are not linked */ }
  }

  function drawn(el, result) {
    R.views[chartId(el)] = result.view;
    pointSelections(el.robustvizFit.spec).forEach(function (name) {
      try { result.view.addDataListener(name + "_store", function () { rememberPicks(el); }); } catch (err) { /* none */ }
    });
    el.robustvizResult = result;
    // vega-embed's actions menu opens from an icon without words: name it for screen readers.
    var menu = el.querySelector("details > summary");
    if (menu) menu.setAttribute("aria-label", "chart actions: save as PNG or SVG");
    el.setAttribute("data-rendered", "true");
  }

  // The names of a spec's point selections (a picked row, picked legend entries): their picks are
  // kept across a refit. An interval brush is not: its pixels belong to the layout it was drawn in.
  function pointSelections(node, out) {
    out = out || [];
    if (Array.isArray(node)) node.forEach(function (n) { pointSelections(n, out); });
    else if (node && typeof node === "object") Object.keys(node).forEach(function (key) {
      if (key === "datasets" || key === "data") return;
      if (key === "params" && Array.isArray(node.params)) node.params.forEach(function (p) {
        var type = p && p.select && (p.select.type || p.select);
        if (type === "point" && out.indexOf(p.name) < 0) out.push(p.name);
      });
      else pointSelections(node[key], out);
    });
    return out;
  }

  // What each point selection holds now (Vega-Lite keeps it in the data set ``<name>_store``), as plain
  // tuples (a Vega tuple's id belongs to its view).
  function picks(el) {
    var view = el.robustvizResult.view, kept = {};
    pointSelections(el.robustvizFit.spec).forEach(function (name) {
      try { kept[name] = JSON.parse(JSON.stringify(view.data(name + "_store"))); } catch (err) { /* not in this view */ }
    });
    return kept;
  }

  function restore(result, kept) {
    Object.keys(kept).forEach(function (name) {
      try { result.view.data(name + "_store", kept[name]); } catch (err) { /* not in the redrawn view */ }
    });
    return result.view.runAsync().then(function () { return result; });
  }

  // A chart whose container changes width (a turned phone, a resized window, an opened fold) is fitted
  // again: narrowed when it now overflows, drawn as written when there is room for that again; what
  // was picked in it stays picked.
  function refit(el) {
    var f = el.robustvizFit, room = el.clientWidth;
    // A room under 120 px is a container not laid out (a closed fold, a page being printed or captured):
    // nothing is redrawn for it.
    if (!f || f.busy || !el.robustvizResult || room === f.room || room < 120) return;
    var grown = room > f.room, fits = drawnWidth(el) - room <= 1;
    f.room = room;
    // Narrowed: drawn as written once that fits, and narrowed afresh when it has more room (to fill it)
    // or the narrowed one no longer fits.
    if (f.narrowed ? room < f.natural && fits && !grown : fits) return;
    f.busy = true;
    var kept = picks(el);
    el.robustvizResult.finalize();
    fit(el, f.spec).then(function (result) {
      return restore(result, kept);
    }).then(function (result) {
      drawn(el, result);
      refit(el);  // the width changed again while it was redrawn
    }).catch(function (err) { fail(el, err); });
  }
  var watch = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
    entries.forEach(function (entry) { refit(entry.target); });
  }) : null;

  // Draw one spec into a .chart element; data-rendered records the outcome ("true" or "error").
  function draw(el, spec) {
    if (typeof window.vegaEmbed !== "function") {
      fail(el, "static/vega.js did not load");
      return;
    }
    expandDatasets(spec).then(function (spec) {
      return fit(el, spec);
    }).then(function (result) {
      var kept = savedPicks(el);
      return kept ? restore(result, kept) : result;
    }).then(function (result) {
      drawn(el, result);
      if (watch) watch.observe(el);
    }).catch(function (err) {
      fail(el, err);
    });
  }
  R.draw = draw;

  // Where the image at position ``pos`` of the images table sits among ``sheets`` (file names) of one
  // picture kind: every kind shares one layout (site_builder/tiles.py ``layout``: cols, per_sheet,
  // width, height). Returns a tile for R.tile, its sheet relative to the run's folder.
  R.place = function (layout, sheets, pos) {
    var k = pos % layout.per_sheet;
    return { sheet: "tiles/" + sheets[Math.floor(pos / layout.per_sheet)], width: layout.width,
             height: layout.height, sheet_col: k % layout.cols, sheet_row: Math.floor(k / layout.cols) };
  };

  // A sprite-sheet tile as a picture: the one place in JS that turns (sheet, sheet_col, sheet_row,
  // width, height) into CSS (site_builder/tiles.py does the same for the pages it writes).
  R.tile = function (t, label) {
    var pic = document.createElement("span");
    pic.className = "tile";
    pic.style.width = t.width + "px";
    pic.style.height = t.height + "px";
    pic.style.backgroundImage = "url('" + encodeURI(t.sheet) + "')";
    pic.style.backgroundPosition = "-" + t.sheet_col * t.width + "px -" + t.sheet_row * t.height + "px";
    pic.setAttribute("role", "img");
    pic.setAttribute("aria-label", label);
    return pic;
  };

  function drawAll() {
    document.querySelectorAll("[data-spec]").forEach(function (el) {
      var spec;
      try {
        spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
      } catch (err) {
        fail(el, err);
        return;
      }
      draw(el, spec);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
