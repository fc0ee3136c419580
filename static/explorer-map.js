// The explorer's feature map: a canvas of every clean test image's penultimate features in 2-D (PCA or
// t-SNE), coloured by class, uncertainty or an attack's outcome at the chosen operating point. Drag to
// brush (what it leaves out is dimmed), wheel or pinch to zoom, double-click to reset; hovering a point
// shows its thumbnail and draws where each attack moved it; from the keyboard, arrows step through the
// shown images, + and - zoom, 0 resets.
(function () {
  "use strict";
  var R = window.robustviz, S = R.state, el = R.dom.el;
  var E, canvas, ctx, base, hover, SIZE, PAD = 8, G;
  var view = { x: 0, y: 0, k: 1 };  // the shown box: [x, x + G/k] by [y, y + G/k], in map units
  var dragging = null, pointers = {}, pinch = null;
  var SHORT = 4;  // px: a move shorter than this is called short in the legend

  function init(page) {
    E = page;
    canvas = document.getElementById("feature-map");
    hover = document.getElementById("map-hover");
    ctx = canvas.getContext("2d");
    SIZE = canvas.width;
    base = document.createElement("canvas");
    base.width = base.height = SIZE;
    G = E.d.grid;
    canvas.addEventListener("pointerdown", down);
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
    window.addEventListener("pointercancel", function (e) { delete pointers[e.pointerId]; pinch = null; dragging = null; });
    canvas.addEventListener("pointerleave", function () { hover.hidden = true; });
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      zoom(Math.exp(-e.deltaY * 0.002), local(e));
    }, { passive: false });
    canvas.addEventListener("dblclick", function () { reset(); });
    canvas.addEventListener("keydown", key);
  }

  function span() { return SIZE - 2 * PAD; }
  function toX(v) { return PAD + (v - view.x) * view.k / G * span(); }
  function toY(v) { return SIZE - PAD - (v - view.y) * view.k / G * span(); }
  function fromX(px) { return view.x + (px - PAD) / span() * G / view.k; }
  function fromY(py) { return view.y + (SIZE - PAD - py) / span() * G / view.k; }

  // The pointer's position in canvas pixels.
  function local(e) {
    var r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * SIZE / r.width, (e.clientY - r.top) * SIZE / r.height];
  }

  // Zoom by ``factor`` keeping the map point under ``at`` (canvas px) where it is; 1x to 50x.
  function zoom(factor, at) {
    var k = Math.max(1, Math.min(50, view.k * factor));
    var mx = fromX(at[0]), my = fromY(at[1]);
    view.k = k;
    view.x = clamp(mx - (at[0] - PAD) / span() * G / k);
    view.y = clamp(my - (SIZE - PAD - at[1]) / span() * G / k);
    canvas.setAttribute("data-zoom", k.toFixed(2));
    drawBase();
    drawMap(E.list[E.active]);
  }

  function clamp(v) { return Math.max(0, Math.min(G - G / view.k, v)); }

  function reset() {
    view = { x: 0, y: 0, k: 1 };
    canvas.setAttribute("data-zoom", "1.00");
    drawBase();
    drawMap(E.list[E.active]);
  }

  function colourOf(m, i) {
    var d = E.d, colour = E.state.colour;
    if (colour === "uncertainty") {
      var e = S.value(d, m, "entropy", i), t = e === null ? 0 : Math.min(1, e / Math.log(d.class_names.length));
      return "hsl(" + Math.round(220 - 220 * t) + ",75%," + Math.round(45 + 10 * t) + "%)";
    }
    if (colour.indexOf("outcome-") === 0) return d.colours.outcomes[outcomeOf(m, i) || "not attacked"];
    return d.colours.classes[d.labels[i]];
  }

  function outcomeOf(m, i) {
    var codes = S.outcomes(E.d, m, E.state)[E.state.colour.slice(8)];
    return codes ? S.outcomeName(E.d, codes[i]) : "";
  }

  // One point: by outcome its shape (as in the grid: filled, ring, cross), otherwise a filled dot.
  function point(c, x, y, shape, r) {
    c.beginPath();
    if (shape === "not fooled") {
      c.lineWidth = 1.3;
      c.arc(x, y, r, 0, 2 * Math.PI);
      c.stroke();
    } else if (shape === "wrong before") {
      c.lineWidth = 1.3;
      c.moveTo(x - r, y - r); c.lineTo(x + r, y + r);
      c.moveTo(x - r, y + r); c.lineTo(x + r, y - r);
      c.stroke();
    } else {
      c.arc(x, y, r, 0, 2 * Math.PI);
      c.fill();
    }
  }

  function inside(b, x, y) {
    return x >= Math.min(b[0], b[2]) && x <= Math.max(b[0], b[2]) && y >= Math.min(b[1], b[3]) && y <= Math.max(b[1], b[3]);
  }

  // The clean images of the model's map, in colour where they pass the filters (brush aside) and grey
  // where they do not; a brush dims the coloured points it leaves out. Drawn into an offscreen canvas
  // once per state or zoom, so brushing and hovering only redraw the overlay.
  function drawBase() {
    var d = E.d, m = S.model(d, E.state), map = m.maps[E.state.map] && m.maps[E.state.map].clean;
    var b = base.getContext("2d"), brush = E.state.brush, byOutcome = E.state.colour.indexOf("outcome-") === 0;
    b.clearRect(0, 0, SIZE, SIZE);
    if (!map) return;
    var shown = new Uint8Array(d.ids.length);
    S.select(d, E.state, true).forEach(function (i) { shown[i] = 1; });
    b.fillStyle = "#dcdcdc";
    for (var i = 0; i < d.ids.length; i++) {
      if (!shown[i] && map.x[i] !== null) b.fillRect(toX(map.x[i]) - 1, toY(map.y[i]) - 1, 2, 2);
    }
    var r = Math.min(4, 1.8 + 0.15 * view.k);
    for (i = 0; i < d.ids.length; i++) {
      if (!shown[i] || map.x[i] === null) continue;
      b.globalAlpha = brush && !inside(brush, map.x[i], map.y[i]) ? 0.18 : 1;
      b.fillStyle = b.strokeStyle = colourOf(m, i);
      point(b, toX(map.x[i]), toY(map.y[i]), byOutcome ? outcomeOf(m, i) : "", r);
    }
    b.globalAlpha = 1;
    legend(m);
  }

  function legend(m) {
    var d = E.d, box = document.getElementById("map-legend"), colour = E.state.colour;
    box.textContent = "";
    var items = colour === "class" ? d.class_names.map(function (n, k) { return [d.colours.classes[k], n, ""]; })
      : colour === "uncertainty" ? [["hsl(220,75%,45%)", "entropy 0", ""], ["hsl(0,75%,55%)", "entropy ln C", ""]]
      : ["fooled", "not fooled", "wrong before", "not attacked"].map(function (o) { return [d.colours.outcomes[o], o, o]; });
    items.forEach(function (it) {
      var item = el("span", "key");
      if (it[2]) item.appendChild(R.dom.mark(it[2]));
      else { var sw = el("span", "swatch"); sw.style.background = it[0]; item.appendChild(sw); }
      item.appendChild(document.createTextNode(it[1]));
      box.appendChild(item);
    });
    var point = d.points.filter(function (p) { return p.key === E.state.point; })[0];
    box.appendChild(el("span", "key", (colour.indexOf("outcome-") === 0 ? "at the " + point.label + " point; " : "") +
      "light grey: filtered out" + (E.state.brush ? "; faint: outside the brush" : "") + "; N = " + d.ids.length +
      " clean test images" + (view.k > 1 ? "; zoom " + view.k.toFixed(1) + "x (double-click or 0 to reset)" : "")));
  }

  // The overlay: the brush, and for the image under the pointer (or the grid's active cell) the move
  // from its clean point to each attack's minimal (solid) and confident (dashed) adversarial.
  function drawMap(selected) {
    ctx.clearRect(0, 0, SIZE, SIZE);
    ctx.drawImage(base, 0, 0);
    var b = dragging || E.state.brush;
    if (b) {
      ctx.strokeStyle = "#1f2328";
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.strokeRect(toX(Math.min(b[0], b[2])), toY(Math.max(b[1], b[3])),
                     toX(Math.max(b[0], b[2])) - toX(Math.min(b[0], b[2])), toY(Math.min(b[1], b[3])) - toY(Math.max(b[1], b[3])));
      ctx.setLineDash([]);
    }
    var d = E.d, m = S.model(d, E.state), maps = m.maps[E.state.map];
    var moves = document.getElementById("map-moves");
    moves.textContent = "";
    canvas.removeAttribute("data-selected");
    if (selected === undefined || selected === null || !maps) return;
    var x0 = maps.clean.x[selected], y0 = maps.clean.y[selected];
    if (x0 === null) return;
    canvas.setAttribute("data-selected", String(d.ids[selected]));
    moves.appendChild(document.createTextNode("#" + d.ids[selected] + ": "));
    var longest = 0;
    d.attacks.forEach(function (a) {
      var colour = d.colours.attacks[a], placed = false;
      [[maps[d.conditions[a].minimal], []], [maps[d.conditions[a].confident], [5, 4]]].forEach(function (pair) {
        var to = pair[0];
        if (!to || to.x[selected] === null) return;
        var x = toX(to.x[selected]), y = toY(to.y[selected]);
        longest = Math.max(longest, Math.hypot(x - toX(x0), y - toY(y0)));
        ctx.strokeStyle = ctx.fillStyle = colour;
        ctx.lineWidth = 2;
        ctx.setLineDash(pair[1]);
        ctx.beginPath();
        ctx.moveTo(toX(x0), toY(y0));
        ctx.lineTo(x, y);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.beginPath();
        ctx.arc(x, y, 4, 0, 2 * Math.PI);
        if (pair[1].length) ctx.stroke(); else ctx.fill();
        placed = true;
      });
      if (!placed) return;
      var key = el("span", "key", d.attack_labels[a] + " (" + S.outcomeName(d, S.outcomes(d, m, E.state)[a][selected]) + ")");
      key.style.borderBottom = "3px solid " + colour;
      moves.appendChild(key);
    });
    if (longest < SHORT) {
      moves.appendChild(el("span", "key short", "every move is under " + SHORT + " px at this zoom (longest " +
        longest.toFixed(1) + " px): zoom in with the wheel to see them"));
    }
    ctx.lineWidth = 1;
    ctx.strokeStyle = "#000";
    ctx.beginPath();
    ctx.arc(toX(x0), toY(y0), 5, 0, 2 * Math.PI);
    ctx.stroke();
  }

  // The shown image whose clean point lies within 6 px of canvas point p; or null.
  function nearest(p) {
    var map = S.model(E.d, E.state).maps[E.state.map], best = null, limit = 6;
    if (!map) return null;
    E.list.forEach(function (i) {
      var cx = map.clean.x[i];
      if (cx === null) return;
      var dist = Math.hypot(toX(cx) - p[0], toY(map.clean.y[i]) - p[1]);
      if (dist <= limit) { limit = dist; best = i; }
    });
    return best;
  }

  function showThumbnail(i, p) {
    var d = E.d, m = S.model(d, E.state);
    hover.textContent = "";
    var pic = R.tile(R.place(E.index, E.index.sheets, i), "test image " + d.ids[i]);
    pic.style.zoom = String(Math.max(2, Math.round(56 / E.index.width)));
    hover.appendChild(pic);
    hover.appendChild(el("span", null, "#" + d.ids[i] + " " + d.class_names[d.labels[i]] + " → " + d.class_names[m.plain_pred[i]]));
    var r = canvas.getBoundingClientRect(), scale = r.width / SIZE;
    hover.style.left = Math.min(r.width - 90, p[0] * scale + 12) + "px";
    hover.style.top = Math.max(0, p[1] * scale - 40) + canvas.offsetTop + "px";
    hover.hidden = false;
  }

  function down(e) {
    pointers[e.pointerId] = local(e);
    var ids = Object.keys(pointers);
    if (ids.length === 2) {  // a second finger: pinch instead of brush
      dragging = null;
      var a = pointers[ids[0]], b = pointers[ids[1]];
      pinch = { dist: Math.hypot(a[0] - b[0], a[1] - b[1]) };
      return;
    }
    var p = local(e);
    dragging = [fromX(p[0]), fromY(p[1]), fromX(p[0]), fromY(p[1])];
    canvas.focus();
    e.preventDefault();
  }

  function move(e) {
    if (pointers[e.pointerId]) pointers[e.pointerId] = local(e);
    var ids = Object.keys(pointers);
    if (pinch && ids.length === 2) {
      var a = pointers[ids[0]], b = pointers[ids[1]], dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
      if (pinch.dist > 0) zoom(dist / pinch.dist, [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]);
      pinch.dist = dist;
      return;
    }
    if (dragging) {
      var p = local(e);
      dragging[2] = fromX(p[0]);
      dragging[3] = fromY(p[1]);
      drawMap(null);
      return;
    }
    if (e.target !== canvas || !E.d) return;
    var q = local(e), hit = nearest(q);
    if (hit === null) { hover.hidden = true; return; }
    showThumbnail(hit, q);
    drawMap(hit);
  }

  function up(e) {
    delete pointers[e.pointerId];
    if (pinch) { if (!Object.keys(pointers).length) pinch = null; return; }
    if (!dragging) return;
    var b = dragging;
    dragging = null;
    var tiny = Math.abs(toX(b[2]) - toX(b[0])) < 3 && Math.abs(toY(b[3]) - toY(b[1])) < 3;
    if (!tiny) { E.set(Object.assign({}, E.state, { brush: b, id: null })); return; }
    // A click selects the shown image under it (its cell becomes the active one), or clears the brush.
    var hit = nearest([toX(b[0]), toY(b[1])]);
    if (hit === null) { E.set(Object.assign({}, E.state, { brush: null, id: null })); return; }
    E.grid.moveTo(E.list.indexOf(hit));
  }

  function key(e) {
    var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (step !== undefined) { E.grid.moveTo(E.active + step); e.preventDefault(); return; }
    if (e.key === "Enter" && E.list.length) { E.open(E.list[E.active]); e.preventDefault(); return; }
    if (e.key === "+" || e.key === "=") { zoom(1.5, [SIZE / 2, SIZE / 2]); e.preventDefault(); return; }
    if (e.key === "-") { zoom(1 / 1.5, [SIZE / 2, SIZE / 2]); e.preventDefault(); return; }
    if (e.key === "0") { reset(); e.preventDefault(); }
  }

  R.explorerMap = { init: init, drawBase: drawBase, drawMap: drawMap };
})();
