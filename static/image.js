// The per-image view: one page for every test image, chosen by the link's #id=N. The image's
// data comes from data/images-NNN.js, loaded by a <script> tag (fetch() fails from file://).
// Everything from the data is inserted as text, never as markup.
(function () {
  "use strict";
  var index = JSON.parse(document.getElementById("image-index").textContent);
  var probsTemplate = document.getElementById("spec-probs-template").textContent;
  var passHistogramTemplate = document.getElementById("spec-pass-histogram-template").textContent;
  var records = {};
  var requested = {};
  var wanted = null;

  function status(text) {
    document.getElementById("image-status").textContent = text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function tile(t, caption) {
    var cell = el("span", "cell");
    cell.appendChild(window.robustvizTile(t, caption));
    cell.appendChild(el("span", "caption", caption));
    return cell;
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function table(headers, rows) {
    var t = el("table", "figures");
    var head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
    t.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (v) { tr.appendChild(el("td", null, v)); });
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  function chart(parent, template, name, rows, label) {
    var box = el("div", "chart");
    box.id = "chart-" + name + "-" + parent.getAttribute("data-model");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", label);
    parent.appendChild(box);
    var spec = JSON.parse(template);
    spec.datasets = spec.datasets || {};
    spec.datasets[name] = rows;
    window.robustvizDraw(box, spec);
  }

  // A record's lists follow index.fields; turn one into an object by those names.
  function named(kind, values) {
    var out = {};
    index.fields[kind].forEach(function (name, k) { out[name] = values[k]; });
    return out;
  }

  // Where the image at position pos sits in one of a kind's sheets (all kinds share one layout).
  function place(sheets, pos) {
    var t = index.tiles, k = pos % t.per_sheet;
    return { sheet: sheets[Math.floor(pos / t.per_sheet)], width: t.width, height: t.height,
             sheet_col: k % t.cols, sheet_row: Math.floor(k / t.cols) };
  }

  // What an attack did to the image at one operating point, as its picture's caption says it.
  function outcome(a) {
    var label = a.attack + " " + a.point;
    if (!a.clean_correct) return label + ": not attacked (wrong before the attack)";
    if (!a.success) {
      return label + (a.point === "confident" ? ": no wrong class reached p ≥ " + index.kappa : ": not fooled") +
        " within " + index.budgets[a.attack];
    }
    return label + " → " + index.class_names[a.adv_pred];
  }

  function noiseCaption(a) {
    return "noise, same " + (index.noise_norms[a.attack] === "linf" ? "L∞" : "L2") + " as " +
      a.attack + " " + a.point + " → " + index.class_names[a.noise_pred];
  }

  function showModel(view, r, m, which) {
    var p = index.dropout_ps[which];
    var names = index.class_names;
    function at(sheets) {
      return place(sheets.map(function (s) { return "tiles/" + s; }), r.pos);
    }
    var attacks = [];
    m.attacks.forEach(function (values, k) {
      if (values === null) return;  // not attacked: the attack ran on a subset of the test images
      var a = named("attacks", values);
      a.attack = index.attack_points[k][0];
      a.point = index.attack_points[k][1];
      var sheets = index.tiles.attacks[which][a.attack][a.point];
      a.adversarial = at(sheets.adversarial);
      a.heatmap = at(sheets.heatmap);
      a.noise = sheets.noise && a.noise_l2 !== null ? at(sheets.noise) : null;
      attacks.push(a);
    });
    var conditions = [];
    m.conditions.forEach(function (values, k) {
      if (values === null) return;
      var c = named("conditions", values);
      c.condition = index.conditions[k];
      conditions.push(c);
    });
    var section = el("section", "model");
    section.setAttribute("data-model", String(p));
    section.appendChild(el("h2", null, "Model with dropout p = " + p));
    if (attacks.length) {
      // Wrong before the attack: not attacked; every attack's row then holds the clean prediction.
      var before = attacks[0].clean_correct ? r.class_name : names[attacks[0].adv_pred];
      section.appendChild(el("p", attacks[0].clean_correct ? "clean-correct" : "wrong-before",
        "Clean prediction (dropout off): " + before +
        (attacks[0].clean_correct ? " (correct)" : " — wrong before the attack, so not attacked")));
    }
    var pictures = el("div", "pictures");
    var original = place(index.tiles.original.map(function (s) { return "tiles/" + s; }), r.pos);
    pictures.appendChild(tile(original, "original (" + r.class_name + ")"));
    attacks.forEach(function (a) {
      pictures.appendChild(tile(a.adversarial, outcome(a)));
      pictures.appendChild(tile(a.heatmap, a.attack + " " + a.point + " change"));
      if (a.noise) pictures.appendChild(tile(a.noise, noiseCaption(a)));
    });
    section.appendChild(pictures);
    if (attacks.length) {
      section.appendChild(table(
        ["attack", "operating point", "success", "prediction", "probability", "pixels changed", "L2", "L∞", "D",
         "flat pixels", "iterations", "min ε / c", "noise L2", "noise L∞", "noise → prediction"],
        attacks.map(function (a) {
          return [a.attack, a.point,
                  !a.clean_correct ? "not attacked" : (a.success ? "yes" : "no, within " + index.budgets[a.attack]),
                  names[a.adv_pred], fmt(a.adv_prob, 3), String(a.l0), fmt(a.l2, 3),
                  fmt(a.linf, 3), fmt(a.perceptual_distance, 1), String(a.flat_pixels_changed), String(a.iterations),
                  a.min_eps !== null ? "ε " + fmt(a.min_eps, 4) : (a.c !== null ? "c " + fmt(a.c, 3) : "–"),
                  fmt(a.noise_l2, 3), fmt(a.noise_linf, 3), a.noise_pred === null ? "–" : names[a.noise_pred]];
        })));
    }
    section.appendChild(table(
      ["image", "MC prediction", "entropy", "mutual information", "passes wrong"],
      conditions.map(function (c) {
        return [c.condition, names[c.pred], fmt(c.entropy, 3), fmt(c.mutual_info, 3), fmt(100 * c.fooled_share, 0) + "%"];
      })));
    var row = el("div", "charts-row");
    section.appendChild(row);
    var probs = [], histogram = [];
    conditions.forEach(function (c) {
      if (c.mean_probs === null) return;  // noise controls: the tables above give their figures
      c.mean_probs.forEach(function (prob, k) {
        probs.push({ condition: c.condition, class_name: names[k], prob: prob });
      });
      var width = 1 / c.pass_histogram.length;
      c.pass_histogram.forEach(function (count, k) {
        histogram.push({ condition: c.condition, lower: k * width, upper: (k + 1) * width, count: count });
      });
    });
    chart(row, probsTemplate, "probs", probs, "class probabilities before and after each attack");
    chart(row, passHistogramTemplate, "pass_histogram", histogram, "spread of the MC-dropout passes");
    var maps = m.activations.map(function (values) { return named("activations", values); });
    if (maps.length) {
      section.appendChild(el("h3", null, "Activation maps (after each convolution, ReLU'd, one scale per layer)"));
      var layers = [];
      maps.forEach(function (a) { if (layers.indexOf(a.layer) < 0) layers.push(a.layer); });
      layers.forEach(function (layer) {
        section.appendChild(el("h4", null, layer));
        var strip = el("div", "maps");
        maps.filter(function (a) { return a.layer === layer; }).forEach(function (a) {
          strip.appendChild(tile(a, a.condition + " (" + a.maps + " maps)"));
        });
        section.appendChild(strip);
      });
    }
    view.appendChild(section);
  }

  function show(id) {
    var r = records[id];
    var view = document.getElementById("image-view");
    view.textContent = "";
    document.getElementById("image-title").textContent = "#" + id + " (class " + r.class_name + ")";
    document.title = document.title.split(":")[0] + ": image #" + id;
    var at = index.ids.indexOf(id);
    var prev = document.getElementById("image-prev"), next = document.getElementById("image-next");
    prev.href = "#id=" + index.ids[Math.max(at - 1, 0)];
    next.href = "#id=" + index.ids[Math.min(at + 1, index.ids.length - 1)];
    r.models.forEach(function (m, which) { showModel(view, r, m, which); });
    status("");
    view.setAttribute("data-image-id", String(id));
  }

  window.robustvizImageChunk = function (chunk) {
    chunk.forEach(function (r) { records[r.image_id] = r; });
    if (wanted !== null && records[wanted]) show(wanted);
  };

  function load() {
    var match = /(?:^#|&)id=(-?\d+)/.exec(window.location.hash);
    var id = match ? parseInt(match[1], 10) : index.ids[0];
    wanted = id;
    if (records[id]) {
      show(id);
      return;
    }
    var chunk = index.chunks.filter(function (c) { return id >= c.first && id <= c.last; })[0];
    if (!chunk || index.ids.indexOf(id) < 0) {
      status("No test image has id " + id + ".");
      return;
    }
    if (requested[chunk.file]) return;
    requested[chunk.file] = true;
    var script = document.createElement("script");
    script.src = chunk.file;
    script.onerror = function () { status("Could not load " + chunk.file + "."); };
    document.body.appendChild(script);
  }

  window.addEventListener("hashchange", load);
  load();
})();
