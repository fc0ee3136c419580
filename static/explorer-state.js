// The explorer's state (model, operating point, sort, filters, map brush, active image) and the
// ordered list of images it selects: pure functions of (data, state), shared by the explorer and the
// per-image view (whose previous / next follow the explorer's sort and filter). The state lives in the
// URL hash. Tested directly in tests/test_frontend.py.
(function () {
  "use strict";
  var R = window.robustviz = window.robustviz || {};
  var waiting = [];
  var data = null;

  // data/explorer.js calls this with site_builder/explorer_data.py's record, packed.
  R.explorerData = function (text) {
    R.unpack(text).then(function (d) {
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
  var DEFAULTS = { model: null, point: null, sort: "ranking", dir: "asc", map: "tsne", colour: "class", versus: null };
  var FILTERS = ["class", "plain_pred", "error", "differs"];

  // The state as the hash spells it: model (its key), point (operating point key: minimal, confident,
  // eps0.1, ...), sort, dir, class, plain_pred (the clean prediction with dropout off), error (1: wrong,
  // 0: right), outcome-<attack> (its outcome at the point), versus (another model's key) with differs
  // (an attack: the images it fools on one of the two models and not on the other), <score>=lo..hi,
  // brush=x0,y0,x1,y1 (map units), map, colour, and id (the active image). Values are kept as written; settle() checks them.
  function parse(hash) {
    var q = new URLSearchParams((hash || "").replace(/^#/, ""));
    var s = { filters: {}, ranges: {}, brush: null };
    Object.keys(DEFAULTS).forEach(function (k) { s[k] = q.has(k) ? q.get(k) : DEFAULTS[k]; });
    FILTERS.forEach(function (k) { if (q.has(k) && q.get(k) !== "") s.filters[k] = q.get(k); });
    q.forEach(function (value, key) {
      if (key.indexOf("outcome-") === 0 && value !== "") s.filters[key] = value;
    });
    RANGES.forEach(function (k) {
      if (!q.has(k)) return;
      var parts = q.get(k).split("..");
      s.ranges[k] = parts.length === 2 ? parts.map(function (v) { return v === "" ? null : Number(v); }) : [NaN, NaN];
    });
    if (q.has("brush")) s.brush = q.get("brush").split(",").map(Number);
    s.id = q.has("id") && q.get("id") !== "" ? Number(q.get("id")) : null;
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

  function isIndex(v, n) {
    var k = Number(v);
    return String(v).trim() !== "" && Number.isInteger(k) && k >= 0 && k < n;
  }

  // What a parsed state means for this run's data: every value checked, the ones that name nothing
  // dropped, and each dropped one described in s.dropped ("class=99 (no such class)"), so the page can
  // say what it ignored instead of drawing an empty grid under controls that read "any". Fills in the
  // model, the operating point (the data's default_point) and the map. Returns s.
  function settle(d, s) {
    var dropped = s.dropped = [];
    var drop = function (key, value, why) { dropped.push(key + "=" + value + " (" + why + ")"); };
    var keys = d.models.map(function (m) { return m.key; });
    if (s.model !== null && keys.indexOf(s.model) < 0) { drop("model", s.model, "no such model"); s.model = null; }
    if (s.model === null) s.model = keys[0];
    var points = d.points.map(function (p) { return p.key; });
    if (s.point !== null && points.indexOf(s.point) < 0) { drop("point", s.point, "no such operating point"); s.point = null; }
    if (s.point === null) s.point = d.default_point;
    if (s.versus !== null && (keys.indexOf(s.versus) < 0 || s.versus === s.model)) {
      drop("versus", s.versus, "no other model of that key"); s.versus = null;
    }
    if (!SORTS[s.sort] || (s.sort === "ranking" && !d.ranking)) {
      if (s.sort !== DEFAULTS.sort) drop("sort", s.sort, "no such sort");
      s.sort = d.ranking ? "ranking" : "id";
    }
    if (s.dir !== "asc" && s.dir !== "desc") { drop("dir", s.dir, "asc or desc"); s.dir = "asc"; }
    if (s.brush && !(s.brush.length === 4 && s.brush.every(function (v) { return isFinite(v); }))) {
      drop("brush", s.brush.join(","), "four numbers"); s.brush = null;
    }
    var maps = Object.keys(model(d, s).maps);
    if (maps.indexOf(s.map) < 0) {
      if (s.map !== DEFAULTS.map) drop("map", s.map, "no such map");
      s.map = maps[0] || DEFAULTS.map;
      s.brush = null;  // a brush is drawn in one map's coordinates
    }
    var colours = ["class", "uncertainty"].concat(d.attacks.map(function (a) { return "outcome-" + a; }));
    if (colours.indexOf(s.colour) < 0) { drop("colour", s.colour, "no such colouring"); s.colour = "class"; }
    Object.keys(s.filters).forEach(function (k) {
      var v = s.filters[k];
      if (k === "class" || k === "plain_pred") {
        if (isIndex(v, d.class_names.length)) { s.filters[k] = Number(v); return; }
        drop(k, v, "no such class");
      } else if (k === "error") {
        if (v === 0 || v === 1 || v === "0" || v === "1") { s.filters[k] = Number(v); return; }
        drop(k, v, "0 or 1");
      } else if (k === "differs") {
        if (d.attacks.indexOf(v) < 0) drop(k, v, "no such attack");
        else if (s.versus === null) drop(k, v, "needs versus=, the model to compare with");
        else return;
      } else if (d.attacks.indexOf(k.slice(8)) < 0) {
        drop(k, v, "no such attack");
      } else if (d.outcomes[v] === undefined) {
        drop(k, v, "no such outcome");
      } else return;
      delete s.filters[k];
    });
    Object.keys(s.ranges).forEach(function (k) {
      var r = s.ranges[k];
      var ok = (k !== "ranking" || d.ranking) && r.every(function (v) { return v === null || isFinite(v); });
      if (!ok) { drop(k, r.join(".."), "not a range of numbers"); delete s.ranges[k]; }
    });
    if (s.id !== null && !Number.isInteger(s.id)) { drop("id", s.id, "not an image id"); s.id = null; }
    return s;
  }

  // The model a state picks: by its key, or the first model.
  function model(d, s) {
    return byKey(d, s.model) || d.models[0];
  }

  function byKey(d, key) {
    for (var m = 0; m < d.models.length; m++) if (d.models[m].key === key) return d.models[m];
    return null;
  }

  // Does attack ``a`` fool image i on exactly one of the state's model and its versus model (fooled on
  // one, not fooled on the other, both at the state's point)? Wrong before the attack, or not attacked,
  // on either model: no.
  function differs(d, s, m, i, a) {
    var other = byKey(d, s.versus);
    if (!other) return false;
    var mine = outcomes(d, m, s)[a], theirs = outcomes(d, other, s)[a];
    if (!mine || !theirs) return false;
    var F = d.outcomes.fooled, N = d.outcomes["not fooled"];
    return (mine[i] === F && theirs[i] === N) || (mine[i] === N && theirs[i] === F);
  }

  // attack -> outcome codes at the state's operating point (the minimal point before settle()).
  function outcomes(d, m, s) {
    return m.outcomes[s.point] || m.outcomes[d.default_point] || m.outcomes.minimal;
  }

  function outcomeName(d, code) {
    for (var name in d.outcomes) if (d.outcomes[name] === code) return name;
    return "";
  }

  function value(d, m, key, i) {
    var v = m[key][i];
    return v === null ? null : v / d.scale;
  }

  // Does image i pass every filter, range and (unless skipBrush) the brush, leaving out ``without``
  // (a filter's key: what the counts beside that filter's options need)?
  function passes(d, s, m, i, skipBrush, without) {
    var f = s.filters, at = outcomes(d, m, s);
    if (without !== "class" && f["class"] !== undefined && d.labels[i] !== f["class"]) return false;
    if (without !== "plain_pred" && f.plain_pred !== undefined && m.plain_pred[i] !== f.plain_pred) return false;
    if (without !== "error" && f.error !== undefined && (m.plain_pred[i] !== d.labels[i] ? 1 : 0) !== f.error) return false;
    if (without !== "differs" && f.differs !== undefined && !differs(d, s, m, i, f.differs)) return false;
    for (var k in f) {
      if (k.indexOf("outcome-") !== 0 || k === without) continue;
      var codes = at[k.slice(8)];
      if (codes === undefined || codes[i] !== d.outcomes[f[k]]) return false;
    }
    for (var r in s.ranges) {
      var v = value(d, m, r, i), lo = s.ranges[r][0], hi = s.ranges[r][1];
      if (v === null || (lo !== null && v < lo) || (hi !== null && v > hi)) return false;
    }
    var b = skipBrush ? null : s.brush, map = m.maps[s.map] && m.maps[s.map].clean;
    if (b && map) {
      var x = map.x[i], y = map.y[i];
      return x !== null && x >= Math.min(b[0], b[2]) && x <= Math.max(b[0], b[2]) &&
             y >= Math.min(b[1], b[3]) && y <= Math.max(b[1], b[3]);
    }
    return true;
  }

  // Positions (into d.ids) of the images a state selects, in its order. Null scores sort last either
  // way; ties by image id. ``skipBrush``: everything but the map brush (what the map shows in colour).
  function select(d, s, skipBrush) {
    var m = model(d, s), out = [];
    for (var i = 0; i < d.ids.length; i++) if (passes(d, s, m, i, skipBrush)) out.push(i);
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

  // The counts beside one filter's options: how many images each of its values would show with every
  // other filter, range and the brush kept. Keys: the option values as the controls spell them
  // ("" for "any"; class index; 0/1 for error; an outcome name).
  function counts(d, s, filter) {
    var m = model(d, s), out = { "": 0 }, at = outcomes(d, m, s);
    for (var i = 0; i < d.ids.length; i++) {
      if (!passes(d, s, m, i, false, filter)) continue;
      if (filter === "differs") {  // an image can differ for several attacks: each option counts its own
        out[""] += 1;
        d.attacks.forEach(function (a) { if (differs(d, s, m, i, a)) out[a] = (out[a] || 0) + 1; });
        continue;
      }
      var v = filter === "class" ? d.labels[i] : filter === "plain_pred" ? m.plain_pred[i]
        : filter === "error" ? (m.plain_pred[i] !== d.labels[i] ? 1 : 0)
        : at[filter.slice(8)] ? outcomeName(d, at[filter.slice(8)][i]) : "";
      out[""] += 1;
      out[v] = (out[v] || 0) + 1;
    }
    return out;
  }

  // The active filters in words ("class 3", "FGSM not fooled at the confident point", "a brush on the
  // map"), for the count line and the empty state.
  function describe(d, s) {
    var out = [], f = s.filters;
    var point = d.points.filter(function (p) { return p.key === s.point; })[0];
    if (f["class"] !== undefined) out.push("class " + d.class_names[f["class"]]);
    if (f.plain_pred !== undefined) out.push("predicted " + d.class_names[f.plain_pred]);
    if (f.error !== undefined) out.push("clean prediction " + (f.error ? "wrong" : "right"));
    if (f.differs !== undefined) {
      var other = byKey(d, s.versus);
      out.push(d.attack_labels[f.differs] + " fools one of this model and " + (other ? other.label : s.versus) + ", not the other");
    }
    Object.keys(f).sort().forEach(function (k) {
      if (k.indexOf("outcome-") === 0) out.push(d.attack_labels[k.slice(8)] + " " + f[k] + " at the " + (point ? point.key : s.point) + " point");
    });
    Object.keys(s.ranges).sort().forEach(function (k) {
      var r = s.ranges[k];
      out.push(SORTS[k] + (r[0] !== null ? " ≥ " + r[0] : "") + (r[0] !== null && r[1] !== null ? " and" : "") + (r[1] !== null ? " ≤ " + r[1] : ""));
    });
    if (s.brush) out.push("a brush on the map");
    return out;
  }

  // The selection as CSV, one row per image in the grid's order: id, true class, the model's clean
  // prediction (dropout off), each attack's outcome at the state's operating point (and on the versus
  // model, when one is picked), and the scores as the explorer holds them (rounded to its scale). Fields
  // with a comma or quote are quoted.
  function csv(d, s) {
    var m = model(d, s), at = outcomes(d, m, s), other = byKey(d, s.versus);
    var theirs = other ? outcomes(d, other, s) : null;
    var scores = RANGES.filter(function (k) { return k !== "ranking" || d.ranking; });
    var header = ["image_id", "label", "model", "point", "plain_pred"].concat(
      d.attacks.map(function (a) { return "outcome_" + a; }),
      other ? d.attacks.map(function (a) { return "outcome_" + a + "_" + other.key; }) : [], scores.map(function (k) {
        return k === "ranking" ? "ranking_" + d.ranking.attack : k;
      }));
    var quote = function (v) {
      var t = v === null || v === undefined ? "" : String(v);
      return /[",\n]/.test(t) ? '"' + t.replace(/"/g, '""') + '"' : t;
    };
    var lines = [header.join(",")];
    select(d, s).forEach(function (i) {
      var row = [d.ids[i], d.class_names[d.labels[i]], m.key, s.point, d.class_names[m.plain_pred[i]]].concat(
        d.attacks.map(function (a) { return at[a] ? outcomeName(d, at[a][i]) : ""; }),
        other ? d.attacks.map(function (a) { return theirs[a] ? outcomeName(d, theirs[a][i]) : ""; }) : [],
        scores.map(function (k) { return value(d, m, k, i); }));
      lines.push(row.map(quote).join(","));
    });
    return lines.join("\n") + "\n";
  }

  R.state = {
    describe: describe, csv: csv,
    whenData: whenData, parse: parse, settle: settle, format: format, model: model, select: select, value: value,
    counts: counts, outcomes: outcomes, outcomeName: outcomeName,
    SORTS: SORTS, RANGES: RANGES, DEFAULTS: DEFAULTS, FILTERS: FILTERS
  };
})();
