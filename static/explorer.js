// The explorer page: wires the state (explorer-state.js), the controls, the grid and the map. Every
// change sets the URL hash and the page draws itself from the hash, so a view can be shared and Back
// works; the hash's id is the active image, so coming back from an image view keeps your place.
(function () {
  "use strict";
  var R = window.robustviz, S = R.state;
  var E = R.explorer = {
    index: JSON.parse(document.getElementById("explorer-index").textContent),
    d: null, state: null, list: [], active: 0,
    grid: R.explorerGrid, map: R.explorerMap,
    stats: { renders: 0, lastMs: null, firstRenderMs: null }  // read by bench/explorer.py
  };
  var note = document.getElementById("explorer-note");

  // The image view of image position i, carrying the explorer's state.
  E.href = function (i) { return "image.html" + S.format(E.state, E.d.ids[i]); };

  // Before leaving for image i, write it into this page's history entry: Back returns to it.
  E.remember = function (i) {
    history.replaceState(null, "", S.format(E.state, E.d.ids[i]));
  };

  E.open = function (i) {
    E.remember(i);
    window.location.href = E.href(i);
  };

  // Every change goes through the hash: one history entry per change, drawn by the hashchange handler.
  E.set = function (s) {
    var hash = S.format(s, s.id);
    if (hash === window.location.hash || (hash === "#" && !window.location.hash)) apply(); else window.location.hash = hash;
  };

  E.clearFilters = function () {
    var s = E.state;
    E.set({ model: s.model, point: s.point, sort: s.sort, dir: s.dir, map: s.map, colour: s.colour,
            filters: {}, ranges: {}, brush: null, id: null });
  };

  // The id search: the image's cell when it is shown, otherwise a note saying why not.
  E.find = function (id) {
    var pos = E.d.ids.indexOf(id), at = E.list.indexOf(pos);
    note.textContent = "";
    if (!Number.isInteger(id) || pos < 0) { note.textContent = "No test image has id " + id + "."; return; }
    if (at < 0) {
      note.appendChild(document.createTextNode("Image #" + id + " is not among the images shown: clear filters to see it, or "));
      var link = R.dom.el("a", null, "open its view");
      link.href = E.href(pos);
      note.appendChild(link);
      note.appendChild(document.createTextNode("."));
      return;
    }
    E.grid.moveTo(at, true);
    document.getElementById("grid").focus();
  };

  function apply() {
    var t0 = performance.now();
    E.state = S.settle(E.d, S.parse(window.location.hash));
    var state = E.state, m = S.model(E.d, state);
    note.textContent = state.dropped.length ? "Ignored from the address: " + state.dropped.join("; ") + "." : "";
    if (state.dropped.length) history.replaceState(null, "", S.format(state, state.id));
    R.explorerControls.write(E);
    E.list = S.select(E.d, state, false);
    var at = state.id === null ? -1 : E.list.indexOf(E.d.ids.indexOf(state.id));
    E.active = Math.max(0, at);
    document.getElementById("grid").scrollTop = 0;
    var filters = S.describe(E.d, state);
    document.getElementById("explorer-count").textContent = E.list.length + " of " + E.d.ids.length +
      " test images shown (model: " + m.label + (filters.length ? "; filtered by " + filters.join(", ") : "") +
      "; sorted by " + S.SORTS[state.sort] + ", " + (state.dir === "asc" ? "ascending" : "descending") +
      "; images without that score last)";
    E.grid.draw(true);
    E.grid.legend();
    E.map.drawBase();
    if (at >= 0) E.grid.moveTo(at, true); else E.map.drawMap(null);
    E.stats.renders += 1;
    E.stats.lastMs = performance.now() - t0;
    var grid = document.getElementById("grid");
    grid.setAttribute("data-rendered", "true");
    grid.setAttribute("data-count", String(E.list.length));
    if (E.stats.firstRenderMs === null) E.stats.firstRenderMs = performance.now();
  }

  window.addEventListener("hashchange", function () { if (E.d) apply(); });
  S.whenData(function (data) {
    E.d = data;
    E.state = S.settle(data, S.parse(window.location.hash));
    R.explorerControls.build(E);
    E.grid.init(E);
    E.map.init(E);
    apply();
  });
})();
