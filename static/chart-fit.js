// A chart that is wider than its container, rearranged to fit it (a responsive wrap): pure, no DOM,
// so that it can be tested on its own (tests/test_frontend.py). site.js draws a spec as written,
// measures it, and redraws it narrowed only when it overflows; Vega-Lite's width "container" does
// not apply to the concatenated dashboards, whose linked selections need them to stay one spec.
(function () {
  "use strict";
  var R = window.robustviz = window.robustviz || {};

  // Keys whose values are data: shared with the original, never copied or walked.
  var DATA = { datasets: true, data: true, values: true };

  // ``spec`` laid out in one column: side-by-side views (hconcat, a facet's columns, a wrapped
  // concat) stacked; every view's numeric width at most ``width`` px; legends below their views, in
  // rows. The original is not changed, and its data is shared, not copied.
  function narrow(spec, width) {
    var out = walk(spec, width);
    var config = Object.assign({}, spec.config || {});
    // Legends below the views, one under the other (Vega's legend layout), one entry a line: a legend starts at the plot's left edge, after the axis labels, so a wide one would overflow.
    config.legend = Object.assign({}, config.legend || {}, {
      orient: "bottom", direction: "vertical", columns: 1,
      layout: { bottom: { direction: "vertical", anchor: "start", bounds: "full" } } });
    // Titles (their written lines are re-wrapped by ``walk``; a title that follows a pick is a Vega
    // expression and keeps its lines) and axis titles longer than the plot would widen the chart past
    // it: they are cut there, with an ellipsis.
    config.title = Object.assign({}, config.title || {}, { limit: width + 20 });
    config.axis = Object.assign({}, config.axis || {}, { titleLimit: width + 20 });
    out.config = config;
    return out;
  }

  // Subtitle lines re-wrapped to ``chars`` characters at most (a word longer than that keeps its line).
  function wrap(text, chars) {
    var words = [].concat(text).join(" ").split(/\s+/).filter(Boolean), lines = [], line = "";
    words.forEach(function (word) {
      if (line && (line + " " + word).length > chars) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    });
    if (line) lines.push(line);
    return lines;
  }
  R.wrap = wrap;

  function walk(node, width) {
    if (Array.isArray(node)) return node.map(function (n) { return walk(n, width); });
    if (!node || typeof node !== "object") return node;
    var out = {};
    Object.keys(node).forEach(function (key) {
      var value = node[key];
      if (DATA[key]) out[key] = value;
      else if (key === "hconcat") out.vconcat = walk(value, width);
      else if (key === "width" && typeof value === "number") out.width = Math.min(value, width);
      // About 5.5 px a character at Vega's 10-px subtitle font.
      else if (key === "subtitle" && (typeof value === "string" || Array.isArray(value)))
        out.subtitle = wrap(value, Math.max(20, Math.floor((width + 20) / 5.5)));
      // A width in steps (one per bar) grows with the bars: a fixed width makes them thinner instead.
      else if (key === "width" && value && typeof value.step === "number") out.width = width;
      else out[key] = walk(value, width);
    });
    if (out.concat && typeof out.columns === "number") out.columns = 1;
    // The same for a facet by the column channel of a single view.
    if (out.encoding && out.encoding.column && !out.encoding.row) {
      out.encoding = Object.assign({}, out.encoding, { facet: Object.assign({}, out.encoding.column, { columns: 1 }) });
      delete out.encoding.column;
    }
    // A facet by columns becomes a wrapped facet of one column: its header stays above each panel.
    if (out.facet && out.facet.column && !out.facet.row) {
      out.facet = out.facet.column;
      out.columns = 1;
    }
    return out;
  }

  R.narrow = narrow;
})();
