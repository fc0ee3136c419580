// The explorer's state (model, sort, filters, map brush) and the ordered list of images it selects:
// one place, shared by the explorer (static/explorer.js) and the per-image view (static/image.js),
// whose previous / next follow the explorer's sort and filter. The state lives in the URL hash.
(function () {
  "use strict";
  var waiting = [];
  var data = null;

  // data/explorer.js calls this with site_builder/explorer_data.py's record, packed.
  window.robustvizExplorerData = function (text) {
    window.robustvizUnpack(text).then(function (d) {
      data = d;
      if (d.ranking) SORTS.ranking = d.ranking.label;  // what the ranking attack's score is, before anyone reads it
      waiting.splice(0).forEach(function (f) { f(d); });
    }).catch(function (err) { console.error(err); });
  };

  function whenData(f) {
    if (data) f(data); else waiting.push(f);
  }

  // "ranking" is the ranking attack's score (FGSM's smallest flipping ε by default); its label comes with
  // the data.
  var SORTS = {
    ranking: "robustness rank", entropy: "entropy", mutual_info: "mutual information",
    max_prob: "max probability", "class": "class", id: "image id"
  };
  var RANGES = ["entropy", "mutual_info", "max_prob", "ranking"];
  var DEFAULTS = { model: null, sort: "ranking", dir: "asc", map: "tsne", colour: "class" };
  var FILTERS = ["class", "plain_pred", "error"];

  // The state as the hash spells it: model (its key), sort, dir, class, plain_pred (the clean prediction
  // with dropout off), error (1: wrong, 0: right), one key per attack (its outcome), <score>=lo..hi,
  // brush=x0,y0,x1,y1 (map units), map, colour, and id.
  function parse(hash) {
    var q = new URLSearchParams((hash || "").replace(/^#/, ""));
    var s = { filters: {}, ranges: {}, brush: null };
    Object.keys(DEFAULTS).forEach(function (k) { s[k] = q.has(k) ? q.get(k) : DEFAULTS[k]; });
    if (!SORTS[s.sort]) s.sort = DEFAULTS.sort;
    if (s.dir !== "desc") s.dir = "asc";
    FILTERS.forEach(function (k) { if (q.has(k) && q.get(k) !== "") s.filters[k] = parseInt(q.get(k), 10); });
    q.forEach(function (value, key) {
      if (key.indexOf("outcome-") === 0) s.filters[key] = value;
    });
    RANGES.forEach(function (k) {
      if (!q.has(k)) return;
      var parts = q.get(k).split("..").map(parseFloat);
      if (parts.length === 2) s.ranges[k] = [isNaN(parts[0]) ? null : parts[0], isNaN(parts[1]) ? null : parts[1]];
    });
    if (q.has("brush")) {
      var b = q.get("brush").split(",").map(parseFloat);
      if (b.length === 4 && b.every(function (v) { return !isNaN(v); })) s.brush = b;
    }
    s.id = q.has("id") ? parseInt(q.get("id"), 10) : null;
    return s;
  }

  // The hash of a state (without the id unless asked): only what differs from the defaults.
  function format(s, id) {
    var q = new URLSearchParams();
    if (id !== undefined && id !== null) q.set("id", id);
    Object.keys(DEFAULTS).forEach(function (k) { if (s[k] !== null && s[k] !== DEFAULTS[k]) q.set(k, s[k]); });
    Object.keys(s.filters).sort().forEach(function (k) { q.set(k, s.filters[k]); });
    Object.keys(s.ranges).sort().forEach(function (k) {
      var r = s.ranges[k];
      q.set(k, (r[0] === null ? "" : r[0]) + ".." + (r[1] === null ? "" : r[1]));
    });
    if (s.brush) q.set("brush", s.brush.map(function (v) { return Math.round(v); }).join(","));
    return "#" + q.toString();
  }

  // What a state means for this run: without a ranking attack there is no rank to sort by.
  function settle(d, s) {
    if (s.sort === "ranking" && !d.ranking) s.sort = "id";
    return s;
  }

  // The model a state picks: by its key, or the first model.
  function model(d, s) {
    for (var m = 0; m < d.models.length; m++) if (d.models[m].key === s.model) return d.models[m];
    return d.models[0];
  }

  function value(d, m, key, i) {
    var v = m[key][i];
    return v === null ? null : v / d.scale;
  }

  // Positions (into d.ids) of the images a state selects, in its order. Null scores sort last either
  // way; ties by image id. ``skipBrush``: everything but the map brush (what the map shows in colour).
  function select(d, s, skipBrush) {
    var m = model(d, s), n = d.ids.length, out = [];
    var f = s.filters, map = m.maps[s.map] && m.maps[s.map].clean, b = skipBrush ? null : s.brush;
    var outcomeKeys = Object.keys(f).filter(function (k) { return k.indexOf("outcome-") === 0; });
    for (var i = 0; i < n; i++) {
      if (f["class"] !== undefined && d.labels[i] !== f["class"]) continue;
      if (f.plain_pred !== undefined && m.plain_pred[i] !== f.plain_pred) continue;
      if (f.error !== undefined && (m.plain_pred[i] !== d.labels[i] ? 1 : 0) !== f.error) continue;
      var keep = true;
      for (var k = 0; k < outcomeKeys.length && keep; k++) {
        var codes = m.outcomes[outcomeKeys[k].slice(8)];
        keep = codes !== undefined && codes[i] === d.outcomes[f[outcomeKeys[k]]];
      }
      for (var r in s.ranges) {
        if (!keep) break;
        var v = value(d, m, r, i), lo = s.ranges[r][0], hi = s.ranges[r][1];
        if (v === null || (lo !== null && v < lo) || (hi !== null && v > hi)) keep = false;
      }
      if (keep && b && map) {
        var x = map.x[i], y = map.y[i];
        keep = x !== null && x >= Math.min(b[0], b[2]) && x <= Math.max(b[0], b[2]) &&
               y >= Math.min(b[1], b[3]) && y <= Math.max(b[1], b[3]);
      }
      if (keep) out.push(i);
    }
    var sign = s.dir === "desc" ? -1 : 1;
    var key = s.sort === "id" ? null : s.sort === "class" ? d.labels : m[s.sort];
    out.sort(function (a, c) {
      if (key) {
        var va = key[a], vc = key[c];
        if (va === null && vc !== null) return 1;
        if (vc === null && va !== null) return -1;
        if (va !== vc) return sign * (va - vc);
      }
      return sign * (d.ids[a] - d.ids[c]);
    });
    return out;
  }

  window.robustvizExplorerState = {
    whenData: whenData, parse: parse, settle: settle, format: format, model: model, select: select, value: value,
    SORTS: SORTS, RANGES: RANGES, DEFAULTS: DEFAULTS, FILTERS: FILTERS
  };
})();
