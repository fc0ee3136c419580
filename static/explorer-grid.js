// The explorer's grid: a virtualised list of the selected images (only the visible rows are in the
// DOM), with under each image its clean prediction and one outcome mark per attack at the chosen
// operating point; the legend that names the marks with their counts; the empty state.
(function () {
  "use strict";
  var R = window.robustviz, S = R.state, el = R.dom.el;
  var E, grid, space, drawn = {}, cols = 1, CELL_W, CELL_H;

  function init(page) {
    E = page;
    grid = document.getElementById("grid");
    space = grid.querySelector(".grid-space");
    CELL_W = E.index.thumb + 10;
    CELL_H = E.index.thumb + 24;
    document.querySelector("#grid-empty .clear-filters").addEventListener("click", function () { E.clearFilters(); });
    grid.addEventListener("scroll", function () { if (E.d) draw(false); });
    window.addEventListener("resize", function () { if (E.d) draw(true); });
    grid.addEventListener("keydown", function (e) {
      var step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols, PageDown: cols * 5, PageUp: -cols * 5 }[e.key];
      if (step !== undefined) { moveTo(E.active + step); e.preventDefault(); return; }
      if (e.key === "Home") { moveTo(0); e.preventDefault(); return; }
      if (e.key === "End") { moveTo(E.list.length - 1); e.preventDefault(); return; }
      if (e.key === "Enter" && E.list.length) { E.open(E.list[E.active]); e.preventDefault(); }
    });
  }

  function marks(m, i) {
    var d = E.d, box = el("span", "marks"), at = S.outcomes(d, m, E.state);
    var wrong = m.plain_pred[i] !== d.labels[i];
    box.appendChild(el("span", wrong ? "pred wrong" : "pred", d.class_names[m.plain_pred[i]]));
    d.attacks.forEach(function (a) {
      var mk = R.dom.mark(S.outcomeName(d, at[a][i]));
      mk.setAttribute("data-attack", a);
      box.appendChild(mk);
    });
    return box;
  }

  function cellLabel(m, i) {
    var d = E.d, at = S.outcomes(d, m, E.state);
    var parts = ["#" + d.ids[i] + ", class " + d.class_names[d.labels[i]],
                 "clean prediction (dropout off): " + d.class_names[m.plain_pred[i]]];
    d.attacks.forEach(function (a) { parts.push(d.attack_labels[a] + ": " + S.outcomeName(d, at[a][i])); });
    var e = S.value(d, m, "entropy", i), rank = S.value(d, m, "ranking", i);
    parts.push("entropy " + (e === null ? "–" : e.toFixed(3)));
    if (d.ranking) parts.push(d.ranking.label + " " + (rank === null ? "–" : rank.toFixed(4)));
    return parts.join("; ");
  }

  function cell(m, at) {
    var d = E.d, i = E.list[at];
    var a = el("a", "thumb");
    a.href = E.href(i);
    a.id = "cell-" + at;
    a.setAttribute("role", "option");
    a.setAttribute("aria-selected", at === E.active ? "true" : "false");
    a.setAttribute("data-image-id", String(d.ids[i]));
    a.setAttribute("aria-label", cellLabel(m, i));
    a.title = cellLabel(m, i);
    a.tabIndex = -1;
    a.style.left = (at % cols) * CELL_W + "px";
    a.style.top = Math.floor(at / cols) * CELL_H + "px";
    var pic = R.tile(R.place(E.index, E.index.sheets, i), "test image " + d.ids[i]);
    pic.style.zoom = String(E.index.thumb / E.index.width);
    a.appendChild(pic);
    a.appendChild(marks(m, i));
    if (at === E.active) a.classList.add("active");
    a.addEventListener("mouseenter", function () { E.map.drawMap(i); });
    a.addEventListener("click", function () { E.remember(i); });  // Back from the image returns here
    return a;
  }

  // Draw the visible rows (and three above and below) only: 10,000 cells would not stay fluid.
  function draw(force) {
    var m = S.model(E.d, E.state), list = E.list;
    cols = Math.max(1, Math.floor((grid.clientWidth - 4) / CELL_W));
    space.style.height = Math.ceil(list.length / cols) * CELL_H + "px";
    var first = Math.max(0, (Math.floor(grid.scrollTop / CELL_H) - 3) * cols);
    var last = Math.min(list.length, (Math.ceil((grid.scrollTop + grid.clientHeight) / CELL_H) + 3) * cols);
    var keep = {};
    for (var at = first; at < last; at++) keep[at] = true;
    Object.keys(drawn).forEach(function (k) {
      if (force || !keep[k]) { space.removeChild(drawn[k]); delete drawn[k]; }
    });
    for (at = first; at < last; at++) {
      if (!drawn[at]) { drawn[at] = cell(m, at); space.appendChild(drawn[at]); }
    }
    grid.setAttribute("aria-activedescendant", drawn[E.active] ? "cell-" + E.active : "");
    document.getElementById("grid-empty").hidden = list.length > 0;
    if (!list.length) document.getElementById("grid-empty-why").textContent = ": " + S.describe(E.d, E.state).join("; ");
  }

  // Scroll so the active cell is in view: to its row when it is outside (``centre``: a third down).
  function reveal(centre) {
    var top = Math.floor(E.active / cols) * CELL_H;
    if (centre) grid.scrollTop = Math.max(0, top - grid.clientHeight / 3);
    else if (top < grid.scrollTop) grid.scrollTop = top;
    else if (top + CELL_H > grid.scrollTop + grid.clientHeight) grid.scrollTop = top + CELL_H - grid.clientHeight;
  }

  function moveTo(at, centre) {
    if (!E.list.length) return;
    E.active = Math.max(0, Math.min(E.list.length - 1, at));
    reveal(centre);
    Object.keys(drawn).forEach(function (k) {
      drawn[k].classList.toggle("active", Number(k) === E.active);
      drawn[k].setAttribute("aria-selected", Number(k) === E.active ? "true" : "false");
    });
    draw(false);
    E.map.drawMap(E.list[E.active]);
  }

  // The marks' legend: each shape with what it means at this operating point, and per attack how many
  // of the images shown (N) have each outcome.
  function legend() {
    var d = E.d, m = S.model(d, E.state), at = S.outcomes(d, m, E.state), box = document.getElementById("grid-legend");
    var point = d.points.filter(function (p) { return p.key === E.state.point; })[0];
    box.textContent = "";
    if (!d.attacks.length) return;
    box.appendChild(el("span", "key", "Marks at the " + (point ? point.label : E.state.point) + " point, one per attack (" +
      d.attacks.map(function (a) { return d.attack_labels[a]; }).join(", ") + "):"));
    [["fooled", "fooled"], ["not fooled", "not fooled within the budget"], ["wrong before", "wrong before (not attacked)"]]
      .forEach(function (o) {
        var key = el("span", "key");
        key.appendChild(R.dom.mark(o[0]));
        key.appendChild(document.createTextNode(o[1]));
        box.appendChild(key);
      });
    var dash = el("span", "key");
    dash.appendChild(R.dom.mark("not attacked"));
    dash.appendChild(document.createTextNode("not run at this point (a subset of the images, or no such budget)"));
    box.appendChild(dash);
    var tally = el("span", "key tally");
    var parts = d.attacks.filter(function (a) { return point && point.attacks.indexOf(a) >= 0; }).map(function (a) {
      var n = { fooled: 0, "not fooled": 0, "wrong before": 0, "not attacked": 0 };
      E.list.forEach(function (i) { n[S.outcomeName(d, at[a][i])] += 1; });
      return d.attack_labels[a] + " (N = " + (E.list.length - n["not attacked"]) + "): " + n.fooled + " fooled, " +
        n["not fooled"] + " not fooled, " + n["wrong before"] + " wrong before" +
        (n["not attacked"] ? ", " + n["not attacked"] + " not run" : "");
    });
    tally.textContent = E.list.length ? "Of the " + E.list.length + " images shown, per attack: " + parts.join("; ") + "." : "";
    box.appendChild(tally);
  }

  R.explorerGrid = { init: init, draw: draw, moveTo: moveTo, legend: legend };
})();
