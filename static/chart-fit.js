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
  // rows; titles from the left edge of their view, axis labels included, within ``room`` px (the
  // container's width; ``width`` + 120 when not given). The original is not changed, and its data is
  // shared, not copied.
  function narrow(spec, width, room) {
    // What a title may take: the room less vega-embed's padding and the actions menu (about 50 px).
    var line = Math.max(width + 20, (room || width + 120) - 50);
    var out = walk(spec, width, line);
    var config = Object.assign({}, spec.config || {});
    // Legends below the views, one under the other (Vega's legend layout). A legend starts at the plot's
    // left edge, after the axis labels, so its entries are in columns that fit the plot: two where
    // there is room (labels cut to a column's width), else one.
    var columns = width >= 260 ? 2 : 1;
    config.legend = Object.assign({}, config.legend || {}, {
      orient: "bottom", symbolDirection: "vertical", columns: columns,
      labelLimit: Math.floor(width / columns) - 30,
      layout: { bottom: { direction: "vertical", anchor: "start", bounds: "full" } },
      // A colour ramp laid along the plot, not down it (a vertical one is as tall as a plot). A legend's
      // "direction" would set the ramp's too, so the entries' is set by symbolDirection alone.
      gradientDirection: "horizontal", gradientLength: Math.max(60, Math.min(200, width - 40)) });
    // Titles start at their view's left edge, where the axis labels begin, so that a title longer
    // than the plot has the labels' width as well: their written lines, and those of a title that
    // follows a pick (held in a ``*_lines`` parameter), are re-wrapped by ``walk``; what is still
    // longer is cut at the room's edge with an ellipsis, so it never widens the chart. Axis titles
    // are cut at the plot's.
    config.title = Object.assign({}, config.title || {}, { limit: line, anchor: "start", frame: "bounds" });
    // An x axis title longer than its plot is wrapped by ``walk``; what is still longer is cut there. A
    // y title runs along the plot's height, which narrowing leaves alone, so it keeps its own limit.
    config.axisX = Object.assign({}, config.axisX || {}, { titleLimit: width + 20 });
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

  // How many characters of a title fit ``line`` px: about 7 px a character at Vega's 13-px bold title font.
  function titleChars(line) { return Math.max(16, Math.floor(line / 7)); }

  function walk(node, width, line) {
    if (Array.isArray(node)) return node.map(function (n) { return walk(n, width, line); });
    if (!node || typeof node !== "object") return node;
    var out = {};
    Object.keys(node).forEach(function (key) {
      var value = node[key];
      if (DATA[key]) out[key] = value;
      else if (key === "hconcat") out.vconcat = walk(value, width, line);
      else if (key === "width" && typeof value === "number") out.width = Math.min(value, width);
      // The lines of titles that follow a pick (charts.picked_title): variant -> lines, each line
      // re-wrapped on its own, so that a heading stays a line apart from its sentence.
      else if (key === "params" && Array.isArray(value)) out.params = value.map(function (p) {
        if (!p || !/_lines$/.test(p.name || "") || !p.value || typeof p.value !== "object") return walk(p, width, line);
        var chars = titleChars(line), lines = {};
        Object.keys(p.value).forEach(function (k) {
          lines[k] = [].concat.apply([], [].concat(p.value[k]).map(function (l) { return wrap(l, chars); }));
        });
        return Object.assign({}, p, { value: lines });
      });
      // About 5.5 px a character at Vega's 10-px subtitle font.
      else if (key === "subtitle" && (typeof value === "string" || Array.isArray(value)))
        out.subtitle = wrap(value, Math.max(20, Math.floor(line / 5.5)));
      // A width in steps (one per bar) grows with the bars: a fixed width makes them thinner instead.
      else if (key === "width" && value && typeof value.step === "number") out.width = width;
      else out[key] = walk(value, width, line);
    });
    // A view's own title (not an axis's or a legend's), re-wrapped like its subtitle.
    var view = node.mark || node.layer || node.vconcat || node.hconcat || node.concat || node.spec;
    if (view && out.title) {
      var chars = titleChars(line);
      if (typeof out.title === "string" && out.title.length > chars) out.title = wrap(out.title, chars);
      else if (typeof out.title.text === "string" && out.title.text.length > chars)
        out.title = Object.assign({}, out.title, { text: wrap(out.title.text, chars) });
    }
    // An x axis title in lines no wider than the plot: about 6 px a character at Vega's 11-px bold axis title.
    var x = out.encoding && out.encoding.x, axisChars = Math.max(16, Math.floor((width + 20) / 6));
    if (x && typeof x.title === "string" && x.title.length > axisChars)
      out.encoding = Object.assign({}, out.encoding, { x: Object.assign({}, x, { title: wrap(x.title, axisChars) }) });
    if ((out.concat || (out.facet && !out.facet.column && !out.facet.row)) && typeof out.columns === "number") out.columns = 1;
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
