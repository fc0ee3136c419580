// The explorer's controls: model, operating point, sort, filters with counts beside their options,
// score ranges, the map's method and colouring, and the id search. They read from and write to the
// page's state (static/explorer.js); every change goes through the hash.
(function () {
  "use strict";
  var R = window.robustviz, S = R.state, el = R.dom.el;

  function get(name) {  // "" for a control this run does not have
    var e = document.querySelector("[name='" + name + "']");
    return e ? e.value : "";
  }

  function set(name, v) {
    var e = document.querySelector("[name='" + name + "']");
    if (e) e.value = v;
  }

  function control(form, label, name, choices) {
    var wrap = el("label", "control");
    wrap.appendChild(el("span", null, label));
    var select = el("select");
    select.name = name;
    choices.forEach(function (c) {
      var o = R.dom.option(select, c[0], c[1]);
      o.setAttribute("data-label", c[1]);  // the label without its count
    });
    wrap.appendChild(select);
    form.appendChild(wrap);
    return select;
  }

  function range(form, label, name) {
    var wrap = el("label", "control range");
    wrap.appendChild(el("span", null, label));
    var pair = wrap.appendChild(el("span", "pair"));
    ["lo", "hi"].forEach(function (end) {
      var input = el("input");
      input.type = "number";
      input.step = "any";
      input.name = name + "-" + end;
      input.placeholder = end === "lo" ? "min" : "max";
      input.setAttribute("aria-label", label + (end === "lo" ? " at least" : " at most"));
      pair.appendChild(input);
    });
    form.appendChild(wrap);
  }

  function build(E) {
    var d = E.d, main = document.getElementById("explorer-view"), form = document.getElementById("explorer-controls");
    var classes = [["", "any"]].concat(d.class_names.map(function (n, k) { return [String(k), n]; }));
    control(main, "Model", "model", d.models.map(function (m) {
      return [m.key, m.label + " (accuracy " + (100 * m.accuracy).toFixed(1) + "%)"];
    }));
    control(main, "Operating point", "point", d.points.map(function (p) { return [p.key, p.label]; }));
    control(main, "Sort by", "sort", Object.keys(S.SORTS).filter(function (k) { return k !== "ranking" || d.ranking; })
      .map(function (k) { return [k, S.SORTS[k]]; }));
    control(main, "Order", "dir", [["asc", "ascending"], ["desc", "descending"]]);
    control(form, "Class", "class", classes);
    control(form, "Prediction", "plain_pred", classes);
    control(form, "Clean prediction", "error", [["", "any"], ["0", "right"], ["1", "wrong"]]);
    // Outcome differs between models: pick another model and an attack; the images one resists and the other does not.
    control(form, "Compare with model", "versus", [["", "none"]].concat(d.models.map(function (m) { return [m.key, m.label]; })));
    control(form, "Outcome differs for", "differs", [["", "any"]].concat(d.attacks.map(function (a) { return [a, d.attack_labels[a]]; })));
    d.attacks.forEach(function (a) {
      control(form, d.attack_labels[a] + " outcome", "outcome-" + a,
        [["", "any"]].concat(Object.keys(d.outcomes).map(function (o) { return [o, o]; })));
    });
    S.RANGES.forEach(function (r) { if (r !== "ranking" || d.ranking) range(form, S.SORTS[r], r); });
    var reset = el("button", "clear-filters", "Clear filters");
    reset.type = "button";
    reset.addEventListener("click", function () { E.clearFilters(); });
    form.appendChild(reset);

    var mapForm = document.getElementById("map-controls");
    var method = control(mapForm, "Map", "map", []);
    Object.keys(S.model(d, E.state).maps).forEach(function (k) { R.dom.option(method, k, k === "pca" ? "PCA" : "t-SNE"); });
    control(mapForm, "Colour by", "colour", [["class", "class"], ["uncertainty", "uncertainty (entropy)"]].concat(
      d.attacks.map(function (a) { return ["outcome-" + a, d.attack_labels[a] + " outcome"]; })));
    [main, form].forEach(function (f) { f.addEventListener("change", function () { E.set(read(E)); }); });
    // The filters fold on a phone, so the grid is a screen or two down; on a wide screen they are open.
    var fold = document.getElementById("explorer-filters");
    if (window.innerWidth >= 700) fold.open = true;
    mapForm.addEventListener("change", function () { E.set(read(E)); });

    // The selection as a CSV file, made in the browser (works offline and from file://).
    var save = el("button", "export-csv", "Download the selection (CSV)");
    save.type = "button";
    save.addEventListener("click", function () {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([S.csv(d, E.state)], { type: "text/csv" }));
      link.download = "explorer-" + E.state.model + "-" + E.state.point + ".csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    });
    main.appendChild(save);

    var find = document.getElementById("find-image");
    find.addEventListener("submit", function (e) {
      e.preventDefault();
      E.find(Number(find.querySelector("input").value));
    });
  }

  // The state the controls spell (the brush kept unless the map changed).
  function read(E) {
    var d = E.d, state = E.state;
    var s = { filters: {}, ranges: {}, brush: state.brush, id: null };
    ["model", "point", "sort", "dir", "map", "colour"].forEach(function (k) { s[k] = get(k); });
    if (s.map !== state.map) s.brush = null;  // a brush is drawn in one map's coordinates
    s.versus = get("versus") || null;
    S.FILTERS.forEach(function (k) {
      if (get(k) !== "") s.filters[k] = k === "differs" ? get(k) : parseInt(get(k), 10);
    });
    d.attacks.forEach(function (a) { if (get("outcome-" + a) !== "") s.filters["outcome-" + a] = get("outcome-" + a); });
    S.RANGES.forEach(function (r) {
      var lo = get(r + "-lo"), hi = get(r + "-hi");
      if (lo !== "" || hi !== "") s.ranges[r] = [lo === "" ? null : parseFloat(lo), hi === "" ? null : parseFloat(hi)];
    });
    return s;
  }

  // Set every control to the state, and write beside each filter option how many images it would show
  // with the other filters kept.
  function write(E) {
    var d = E.d, state = E.state;
    var active = Object.keys(state.filters).length + Object.keys(state.ranges).length + (state.brush ? 1 : 0);
    document.getElementById("filters-summary").textContent = "Filters" + (active ? " (" + active + " active)" : "") +
      " and the id search";
    ["model", "point", "sort", "dir", "map", "colour"].forEach(function (k) { set(k, state[k]); });
    set("versus", state.versus || "");
    S.FILTERS.forEach(function (k) { set(k, state.filters[k] === undefined ? "" : String(state.filters[k])); });
    d.attacks.forEach(function (a) { set("outcome-" + a, state.filters["outcome-" + a] || ""); });
    S.RANGES.forEach(function (r) {
      var v = state.ranges[r] || [null, null];
      set(r + "-lo", v[0] === null ? "" : v[0]);
      set(r + "-hi", v[1] === null ? "" : v[1]);
    });
    S.FILTERS.concat(d.attacks.map(function (a) { return "outcome-" + a; })).forEach(function (k) {
      var n = S.counts(d, state, k);
      document.querySelectorAll("select[name='" + k + "'] option").forEach(function (o) {
        o.textContent = o.getAttribute("data-label") + " (" + (n[o.value] || 0) + ")";
      });
    });
  }

  R.explorerControls = { build: build, read: read, write: write };
})();
