// The explorer: a virtualised grid of every test image and a canvas map of the model's feature space.
// Sort, filters and the map brush live in the URL hash (static/explorer-state.js): every change sets
// the hash, and the page draws itself from the hash, so a view can be shared and Back works.
// Everything from the data is inserted as text, never as markup.
(function () {
  "use strict";
  var S = window.robustvizExplorerState;
  var index = JSON.parse(document.getElementById("explorer-index").textContent);
  var grid = document.getElementById("grid");
  var space = grid.querySelector(".grid-space");
  var canvas = document.getElementById("feature-map");
  var form = document.getElementById("explorer-controls");
  var d = null, state = null, list = [], active = 0, cols = 1, drawn = {};
  var stats = window.robustvizExplorer = { renders: 0, lastMs: null, firstRenderMs: null };

  // Colours come with the data (d.colours): the one palette, defined in compute/contract.py.
  var THUMB = index.thumb, CELL_W = THUMB + 10, CELL_H = THUMB + 24;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function classColour(k) {
    return d.colours.classes[k];
  }

  function outcomeName(code) {
    for (var name in d.outcomes) if (d.outcomes[name] === code) return name;
    return "";
  }

  // ---- controls -------------------------------------------------------------------------------
  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }

  function control(label, name, choices) {
    var wrap = el("label", "control");
    wrap.appendChild(el("span", null, label));
    var select = el("select");
    select.name = name;
    choices.forEach(function (c) { option(select, c[0], c[1]); });
    wrap.appendChild(select);
    form.appendChild(wrap);
    return select;
  }

  function range(label, name) {
    var wrap = el("label", "control range");
    wrap.appendChild(el("span", null, label));
    ["lo", "hi"].forEach(function (end) {
      var input = el("input");
      input.type = "number";
      input.step = "any";
      input.name = name + "-" + end;
      input.placeholder = end === "lo" ? "min" : "max";
      wrap.appendChild(input);
    });
    form.appendChild(wrap);
  }

  function buildControls() {
    var classes = [["", "any"]].concat(d.class_names.map(function (n, k) { return [String(k), n]; }));
    control("Model", "model", d.models.map(function (m) {
      return [m.key, m.label + " (accuracy " + (100 * m.accuracy).toFixed(1) + "%)"];
    }));
    control("Sort by", "sort", Object.keys(S.SORTS).filter(function (k) { return k !== "ranking" || d.ranking; })
      .map(function (k) { return [k, S.SORTS[k]]; }));
    control("Order", "dir", [["asc", "ascending"], ["desc", "descending"]]);
    control("Class", "class", classes);
    control("Prediction", "plain_pred", classes);
    control("Clean prediction", "error", [["", "any"], ["0", "right"], ["1", "wrong"]]);
    d.attacks.forEach(function (a) {
      control(d.attack_labels[a] + " outcome", "outcome-" + a, [["", "any"]].concat(Object.keys(d.outcomes).map(function (o) { return [o, o]; })));
    });
    S.RANGES.forEach(function (r) { if (r !== "ranking" || d.ranking) range(S.SORTS[r], r); });
    var reset = el("button", null, "Clear filters");
    reset.type = "button";
    reset.addEventListener("click", function () {
      setState({ model: state.model, sort: state.sort, dir: state.dir, map: state.map, colour: state.colour,
                 filters: {}, ranges: {}, brush: null });
    });
    form.appendChild(reset);
    var mapForm = document.getElementById("map-controls");
    var method = el("select");
    method.name = "map";
    Object.keys(S.model(d, state).maps).forEach(function (k) { option(method, k, k === "pca" ? "PCA" : "t-SNE"); });
    var colour = el("select");
    colour.name = "colour";
    option(colour, "class", "class");
    option(colour, "uncertainty", "uncertainty (entropy)");
    d.attacks.forEach(function (a) { option(colour, "outcome-" + a, d.attack_labels[a] + " outcome"); });
    [["Map", method], ["Colour by", colour]].forEach(function (pair) {
      var wrap = el("label", "control");
      wrap.appendChild(el("span", null, pair[0]));
      wrap.appendChild(pair[1]);
      mapForm.appendChild(wrap);
    });
    form.addEventListener("change", readControls);
    mapForm.addEventListener("change", readControls);
  }

  function readControls() {
    var s = { filters: {}, ranges: {}, brush: state.brush };
    var get = function (name) {  // "" for a control this run does not have
      var e = document.querySelector("[name='" + name + "']");
      return e ? e.value : "";
    };
    s.model = get("model");
    s.sort = get("sort");
    s.dir = get("dir");
    s.map = get("map");
    s.colour = get("colour");
    if (s.map !== state.map) s.brush = null;  // a brush is drawn in one map's coordinates
    S.FILTERS.forEach(function (k) { if (get(k) !== "") s.filters[k] = parseInt(get(k), 10); });
    d.attacks.forEach(function (a) { if (get("outcome-" + a) !== "") s.filters["outcome-" + a] = get("outcome-" + a); });
    S.RANGES.forEach(function (r) {
      var lo = get(r + "-lo"), hi = get(r + "-hi");
      if (lo !== "" || hi !== "") s.ranges[r] = [lo === "" ? null : parseFloat(lo), hi === "" ? null : parseFloat(hi)];
    });
    setState(s);
  }

  function writeControls() {
    var set = function (name, v) {
      var e = document.querySelector("[name='" + name + "']");
      if (e) e.value = v;
    };
    set("model", S.model(d, state).key);
    set("sort", state.sort);
    set("dir", state.dir);
    set("map", state.map);
    set("colour", state.colour);
    S.FILTERS.forEach(function (k) { set(k, state.filters[k] === undefined ? "" : String(state.filters[k])); });
    d.attacks.forEach(function (a) { set("outcome-" + a, state.filters["outcome-" + a] || ""); });
    S.RANGES.forEach(function (r) {
      var v = state.ranges[r] || [null, null];
      set(r + "-lo", v[0] === null ? "" : v[0]);
      set(r + "-hi", v[1] === null ? "" : v[1]);
    });
  }

  // Every change goes through the hash: one history entry per change, drawn by the hashchange handler.
  function setState(s) {
    var hash = S.format(s);
    if (hash === window.location.hash || (hash === "#" && !window.location.hash)) apply(); else window.location.hash = hash;
  }

  // ---- grid -------------------------------------------------------------------------------------
  function href(i) {
    return "image.html" + S.format(state, d.ids[i]);
  }

  function marks(m, i) {
    var box = el("span", "marks");
    var wrong = m.plain_pred[i] !== d.labels[i];
    var pred = el("span", wrong ? "pred wrong" : "pred", d.class_names[m.plain_pred[i]]);
    box.appendChild(pred);
    d.attacks.forEach(function (a, k) {
      var name = outcomeName(m.outcomes[a][i]);
      var dot = el("span", "dot " + name.replace(" ", "-"));
      dot.setAttribute("data-attack", a);
      box.appendChild(dot);
    });
    return box;
  }

  function describe(m, i) {
    var parts = ["#" + d.ids[i] + ", class " + d.class_names[d.labels[i]],
                 "clean prediction (dropout off): " + d.class_names[m.plain_pred[i]]];
    d.attacks.forEach(function (a) { parts.push(d.attack_labels[a] + ": " + outcomeName(m.outcomes[a][i])); });
    var e = S.value(d, m, "entropy", i), rank = S.value(d, m, "ranking", i);
    parts.push("entropy " + (e === null ? "–" : e.toFixed(3)));
    if (d.ranking) parts.push(d.ranking.label + " " + (rank === null ? "–" : rank.toFixed(4)));
    return parts.join("; ");
  }

  function cell(m, at) {
    var i = list[at];
    var a = el("a", "thumb");
    a.href = href(i);
    a.id = "cell-" + at;
    a.setAttribute("role", "option");
    a.setAttribute("aria-selected", at === active ? "true" : "false");
    a.setAttribute("data-image-id", String(d.ids[i]));
    a.setAttribute("aria-label", describe(m, i));
    a.title = describe(m, i);
    a.tabIndex = -1;
    a.style.left = (at % cols) * CELL_W + "px";
    a.style.top = Math.floor(at / cols) * CELL_H + "px";
    var pic = window.robustvizTile(window.robustvizPlace(index, index.sheets, i), "test image " + d.ids[i]);
    pic.style.zoom = String(THUMB / index.width);
    a.appendChild(pic);
    a.appendChild(marks(m, i));
    if (at === active) a.classList.add("active");
    a.addEventListener("mouseenter", function () { drawMap(i); });
    return a;
  }

  // Draw the visible rows (and a screen above and below) only: 10,000 cells would not stay fluid.
  function drawGrid(force) {
    var m = S.model(d, state);
    cols = Math.max(1, Math.floor((grid.clientWidth - 4) / CELL_W));
    space.style.height = Math.ceil(list.length / cols) * CELL_H + "px";
    var first = Math.max(0, (Math.floor(grid.scrollTop / CELL_H) - 3) * cols);
    var last = Math.min(list.length, (Math.ceil((grid.scrollTop + grid.clientHeight) / CELL_H) + 3) * cols);
    var keep = {};
    for (var at = first; at < last; at++) keep[at] = true;
    Object.keys(drawn).forEach(function (at) {
      if (force || !keep[at]) { space.removeChild(drawn[at]); delete drawn[at]; }
    });
    for (at = first; at < last; at++) {
      if (!drawn[at]) { drawn[at] = cell(m, at); space.appendChild(drawn[at]); }
    }
    grid.setAttribute("aria-activedescendant", drawn[active] ? "cell-" + active : "");
  }

  function moveTo(at) {
    if (!list.length) return;
    active = Math.max(0, Math.min(list.length - 1, at));
    var top = Math.floor(active / cols) * CELL_H;
    if (top < grid.scrollTop) grid.scrollTop = top;
    else if (top + CELL_H > grid.scrollTop + grid.clientHeight) grid.scrollTop = top + CELL_H - grid.clientHeight;
    Object.keys(drawn).forEach(function (k) {
      drawn[k].classList.toggle("active", Number(k) === active);
      drawn[k].setAttribute("aria-selected", Number(k) === active ? "true" : "false");
    });
    drawGrid(false);
    drawMap(list[active]);
  }

  grid.addEventListener("scroll", function () { if (d) drawGrid(false); });
  window.addEventListener("resize", function () { if (d) drawGrid(true); });
  grid.addEventListener("keydown", function (e) {
    var step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, PageDown: cols * 5, PageUp: -cols * 5 }[e.key];
    if (step !== undefined) { moveTo(active + step); e.preventDefault(); return; }
    if (e.key === "Home") { moveTo(0); e.preventDefault(); return; }
    if (e.key === "End") { moveTo(list.length - 1); e.preventDefault(); return; }
    if (e.key === "Enter" && list.length) { window.location.href = href(list[active]); e.preventDefault(); }
  });

  // ---- map -------------------------------------------------------------------------------------
  var ctx = canvas.getContext("2d");
  var SIZE = canvas.width, PAD = 8, base = document.createElement("canvas"), dragging = null;
  base.width = base.height = SIZE;

  function toPx(v) { return PAD + v / d.grid * (SIZE - 2 * PAD); }
  function fromPx(px) { return Math.max(0, Math.min(d.grid, (px - PAD) / (SIZE - 2 * PAD) * d.grid)); }

  function colourOf(m, i) {
    if (state.colour === "uncertainty") {
      var e = S.value(d, m, "entropy", i), t = e === null ? 0 : Math.min(1, e / Math.log(d.class_names.length));
      return "hsl(" + Math.round(220 - 220 * t) + ",75%," + Math.round(45 + 10 * t) + "%)";
    }
    if (state.colour.indexOf("outcome-") === 0) {
      var codes = m.outcomes[state.colour.slice(8)];
      var name = codes ? outcomeName(codes[i]) : "";
      return d.colours.outcomes[name || "not attacked"];
    }
    return classColour(d.labels[i]);
  }

  function legend(m) {
    var box = document.getElementById("map-legend");
    box.textContent = "";
    var items = state.colour === "class" ? d.class_names.map(function (n, k) { return [classColour(k), n]; })
      : state.colour === "uncertainty" ? [["hsl(220,75%,45%)", "entropy 0"], ["hsl(0,75%,55%)", "entropy ln C"]]
      : Object.keys(d.colours.outcomes).map(function (o) {
        return [d.colours.outcomes[o], o];
      });
    items.forEach(function (it) {
      var item = el("span", "key");
      var sw = el("span", "swatch");
      sw.style.background = it[0];
      item.appendChild(sw);
      item.appendChild(document.createTextNode(it[1]));
      box.appendChild(item);
    });
    var n = el("span", "key", "grey: filtered out; N = " + d.ids.length + " clean test images (placed, like the " +
               "adversarials, in a map fitted on training images)");
    box.appendChild(n);
  }

  // The clean images of the model's map, coloured where they pass the filters (brush aside); drawn
  // once per state into an offscreen canvas, so brushing and hovering only redraw the overlay.
  function drawBase() {
    var m = S.model(d, state), map = m.maps[state.map] && m.maps[state.map].clean, b = base.getContext("2d");
    b.clearRect(0, 0, SIZE, SIZE);
    if (!map) return;
    var shown = new Uint8Array(d.ids.length);
    S.select(d, state, true).forEach(function (i) { shown[i] = 1; });
    b.fillStyle = "#e3e3e3";
    for (var i = 0; i < d.ids.length; i++) if (!shown[i] && map.x[i] !== null) b.fillRect(toPx(map.x[i]) - 1, SIZE - toPx(map.y[i]) - 1, 2, 2);
    for (i = 0; i < d.ids.length; i++) {
      if (!shown[i] || map.x[i] === null) continue;
      b.fillStyle = colourOf(m, i);
      b.fillRect(toPx(map.x[i]) - 1.5, SIZE - toPx(map.y[i]) - 1.5, 3, 3);
    }
    legend(m);
  }

  // The overlay: the brush, and for the image under the pointer (or the grid's active cell) the
  // move from its clean point to each attack's minimal adversarial.
  function drawMap(selected) {
    ctx.clearRect(0, 0, SIZE, SIZE);
    ctx.drawImage(base, 0, 0);
    var b = dragging || state.brush;
    if (b) {
      ctx.strokeStyle = "#1f2328";
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(toPx(Math.min(b[0], b[2])), SIZE - toPx(Math.max(b[1], b[3])),
                     toPx(Math.max(b[0], b[2])) - toPx(Math.min(b[0], b[2])), toPx(Math.max(b[1], b[3])) - toPx(Math.min(b[1], b[3])));
      ctx.setLineDash([]);
    }
    var m = S.model(d, state), maps = m.maps[state.map];
    var moves = document.getElementById("map-moves");
    moves.textContent = "";
    if (selected === undefined || selected === null || !maps) return;
    var x0 = maps.clean.x[selected], y0 = maps.clean.y[selected];
    if (x0 === null) return;
    moves.appendChild(document.createTextNode("#" + d.ids[selected] + ": "));
    d.attacks.forEach(function (a, k) {
      // Solid line and dot: the minimal adversarial; dashed line and ring: the confident one.
      var colour = d.colours.attacks[a], placed = false;
      [[maps[d.conditions[a].minimal], []], [maps[d.conditions[a].confident], [5, 4]]].forEach(function (pair) {
        var to = pair[0];
        if (!to || to.x[selected] === null) return;
        var x = toPx(to.x[selected]), y = SIZE - toPx(to.y[selected]);
        ctx.strokeStyle = ctx.fillStyle = colour;
        ctx.lineWidth = 2;
        ctx.setLineDash(pair[1]);
        ctx.beginPath();
        ctx.moveTo(toPx(x0), SIZE - toPx(y0));
        ctx.lineTo(x, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.beginPath();
        ctx.arc(x, y, 4, 0, 2 * Math.PI);
        if (pair[1].length) ctx.stroke(); else ctx.fill();
        placed = true;
      });
      if (!placed) return;
      var key = el("span", "key", d.attack_labels[a] + " (" + outcomeName(m.outcomes[a][selected]) + ")");
      key.style.color = colour;
      moves.appendChild(key);
    });
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#000";
    ctx.beginPath();
    ctx.arc(toPx(x0), SIZE - toPx(y0), 5, 0, 2 * Math.PI);
    ctx.stroke();
  }

  function at(e) {
    var r = canvas.getBoundingClientRect();
    return [fromPx((e.clientX - r.left) * SIZE / r.width), fromPx(SIZE - (e.clientY - r.top) * SIZE / r.height)];
  }

  canvas.addEventListener("mousedown", function (e) {
    if (!d) return;
    var p = at(e);
    dragging = [p[0], p[1], p[0], p[1]];
    e.preventDefault();
  });
  window.addEventListener("mousemove", function (e) {
    if (!dragging) return;
    var p = at(e);
    dragging[2] = p[0];
    dragging[3] = p[1];
    drawMap(null);
  });
  window.addEventListener("mouseup", function () {
    if (!dragging) return;
    var b = dragging;
    dragging = null;
    var tiny = Math.abs(b[2] - b[0]) < d.grid / 200 && Math.abs(b[3] - b[1]) < d.grid / 200;
    if (!tiny) { setState(Object.assign({}, state, { brush: b })); return; }
    // A click selects the shown image under it (its cell becomes the active one), or clears the brush.
    var hit = nearest(b[0], b[1]);
    if (hit === null) { setState(Object.assign({}, state, { brush: null })); return; }
    var at = list.indexOf(hit);
    if (at >= 0) moveTo(at); else drawMap(hit);
  });

  // The image of the grid's list whose clean point lies within 6 px of (x, y), in map units; or null.
  function nearest(x, y) {
    var map = S.model(d, state).maps[state.map], best = null, limit = 6 / (SIZE - 2 * PAD) * d.grid;
    if (!map) return null;
    list.forEach(function (i) {
      var cx = map.clean.x[i], cy = map.clean.y[i];
      if (cx === null) return;
      var dist = Math.sqrt((cx - x) * (cx - x) + (cy - y) * (cy - y));
      if (dist <= limit) { limit = dist; best = i; }
    });
    return best;
  }

  // ---- the page --------------------------------------------------------------------------------
  function apply() {
    var t0 = performance.now();
    state = S.settle(d, S.parse(window.location.hash));
    var m = S.model(d, state);
    if (!m.maps[state.map]) state.map = Object.keys(m.maps)[0] || state.map;
    writeControls();
    list = S.select(d, state, false);
    active = 0;
    grid.scrollTop = 0;
    var count = document.getElementById("explorer-count");
    count.textContent = list.length + " of " + d.ids.length + " test images shown (model: " +
      m.label + "; sorted by " + S.SORTS[state.sort] + ", " + (state.dir === "asc" ? "ascending" : "descending") +
      "; images without that score last)";
    drawGrid(true);
    drawBase();
    drawMap(null);
    stats.renders += 1;
    stats.lastMs = performance.now() - t0;
    grid.setAttribute("data-rendered", "true");
    grid.setAttribute("data-count", String(list.length));
    if (stats.firstRenderMs === null) stats.firstRenderMs = performance.now();
  }

  window.addEventListener("hashchange", function () { if (d) apply(); });
  S.whenData(function (data) {
    d = data;
    state = S.parse(window.location.hash);
    buildControls();
    apply();
  });
})();
