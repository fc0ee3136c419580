// The per-image view: one page for every test image, chosen by the link's #id=N (the rest of the
// hash is the explorer's state: previous / next follow its sort and filter). The image's data comes
// from data/images-NNN.js, loaded by a <script> tag (fetch() fails from file://), packed.
// Everything from the data is inserted as text, never as markup.
(function () {
  "use strict";
  var S = window.robustvizExplorerState;
  var index = JSON.parse(document.getElementById("image-index").textContent);
  // Large enough to see single pixels: 8x for 28-px digits, 2x for 96-px STL-10 images.
  var SCALE = Math.max(2, Math.floor(224 / index.tiles.width));
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

  function tile(t, caption, scale) {
    var cell = el("span", "cell");
    var pic = window.robustvizTile(t, caption);
    if (scale) { pic.style.zoom = String(scale); pic.classList.add("big"); }
    cell.appendChild(pic);
    cell.appendChild(el("span", "caption", caption));
    return cell;
  }

  // The perturbation, drawn by the browser from the two pictures: the adversarial over the original
  // with mix-blend-mode "difference" gives |adversarial - original| per pixel; brightness(1 / L-inf)
  // stretches the largest change to full scale, and invert() makes unchanged pixels white.
  // (A canvas cannot read pixels of images opened from file://, and a stored heatmap per image and
  // attack would double the site.)
  function perturbation(original, adversarial, linf, caption) {
    var cell = el("span", "cell");
    var box = el("span", "perturbation");
    box.style.width = original.width * SCALE + "px";
    box.style.height = original.height * SCALE + "px";
    [original, adversarial].forEach(function (t, k) {
      var pic = window.robustvizTile(t, "");
      pic.style.zoom = String(SCALE);
      if (k === 1) pic.classList.add("difference");
      pic.removeAttribute("role");
      box.appendChild(pic);
    });
    box.style.filter = linf > 0 ? "brightness(" + (1 / linf).toFixed(4) + ") invert(1)" : "invert(1)";
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", caption);
    cell.appendChild(box);
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
    return window.robustvizPlace(index.tiles, sheets, pos);
  }

  // What an attack did to the image at one operating point, as its picture's caption says it.
  function outcome(a) {
    var label = index.cards[a.attack].label + " " + a.point;
    if (!a.clean_correct) return label + ": not attacked (wrong before the attack)";
    if (!a.success) {
      return label + (a.point === "confident" ? ": no wrong class reached p ≥ " + index.kappa : ": not fooled") +
        " within " + index.limit_captions[a.attack];
    }
    return label + " → " + index.class_names[a.adv_pred];
  }

  function noiseCaption(a) {
    return "Its noise control (a random perturbation of the same " + (index.cards[a.attack].norm === "linf" ? "L∞" : "L2") +
      ") is predicted " + index.class_names[a.noise_pred] + " (dropout off).";
  }

  function showModel(view, r, m, which) {
    var model = index.models[which];
    var names = index.class_names;
    var attacks = [];
    m.attacks.forEach(function (values, k) {
      if (values === null) return;  // not attacked: the attack ran on a subset of the test images
      var a = named("attacks", values);
      a.attack = index.attack_points[k][0];
      a.point = index.attack_points[k][1];
      a.adversarial = place(index.tiles.attacks[which][a.attack][a.point].adversarial, r.pos);
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
    section.setAttribute("data-model", model.key);
    section.id = model.anchor;
    section.appendChild(el("h2", null, "Model with " + model.label));
    if (attacks.length) {
      // Wrong before the attack: not attacked; every attack's row then holds the clean prediction.
      var before = attacks[0].clean_correct ? r.class_name : names[attacks[0].adv_pred];
      section.appendChild(el("p", attacks[0].clean_correct ? "clean-correct" : "wrong-before",
        "Clean prediction (dropout off): " + before +
        (attacks[0].clean_correct ? " (correct)" : " — wrong before the attack, so not attacked")));
    }
    var original = place(index.tiles.original, r.pos);
    if (!attacks.length) {
      var alone = el("div", "pictures");
      alone.appendChild(tile(original, "original (" + r.class_name + ")", SCALE));
      section.appendChild(alone);
    }
    attacks.forEach(function (a) {
      // One row per attack and operating point: original, adversarial, perturbation.
      var row = el("div", "pictures attack-row");
      row.setAttribute("data-attack", a.attack);
      row.setAttribute("data-point", a.point);
      row.appendChild(el("h3", null, index.cards[a.attack].label + ", " + a.point + " adversarial"));
      row.appendChild(tile(original, "original (" + r.class_name + ")", SCALE));
      row.appendChild(tile(a.adversarial, outcome(a), SCALE));
      row.appendChild(perturbation(original, a.adversarial, a.linf,
        a.linf > 0 ? "|change| × " + (1 / a.linf).toFixed(1) + " (black: the largest, L∞ = " + fmt(a.linf, 3) +
          "; L2 = " + fmt(a.l2, 3) + ", " + a.l0 + " pixels changed)" : "no pixel changed"));
      if (a.noise_pred !== null) row.appendChild(el("p", "note", noiseCaption(a)));
      section.appendChild(row);
    });
    if (attacks.length) {
      section.appendChild(table(
        ["attack", "operating point", "success", "prediction", "probability", "pixels changed", "L2", "L∞", "D",
         "flat pixels", "iterations", "its own figure", "noise L2", "noise L∞", "noise → prediction"],
        attacks.map(function (a) {
          var card = index.cards[a.attack], own = card.own_column ? a[card.own_column] : null;
          return [card.label, a.point,
                  !a.clean_correct ? "not attacked" : (a.success ? "yes" : "no, within " + index.limit_captions[a.attack]),
                  names[a.adv_pred], fmt(a.adv_prob, 3), String(a.l0), fmt(a.l2, 3),
                  fmt(a.linf, 3), fmt(a.perceptual_distance, 1), String(a.flat_pixels_changed), String(a.iterations),
                  own === null || own === undefined ? "–" : card.own_symbol + " " + fmt(own, 4),
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
    if (m.neighbours.length) {
      section.appendChild(el("h3", null, "Nearest test images in feature space (penultimate features, dropout off)"));
      var near = el("div", "pictures neighbours");
      m.neighbours.forEach(function (n) {
        var link = el("a", "neighbour");
        link.href = "#" + hashFor(n[0]).slice(1);
        link.setAttribute("data-image-id", String(n[0]));
        var pos = positionOf(n[0]);
        link.appendChild(tile(place(index.tiles.original, pos),
          "#" + n[0] + " (" + index.class_names[index.labels[pos]] + "), distance " + fmt(n[1], 2), 2));
        near.appendChild(link);
      });
      section.appendChild(near);
    }
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

  var positions = {};
  index.ids.forEach(function (id, pos) { positions[id] = pos; });
  function positionOf(id) { return positions[id]; }

  // This page's hash for image ``id``, keeping the explorer's state.
  function hashFor(id) {
    return S.format(S.parse(window.location.hash), id);
  }

  // Previous / next in the explorer's order (its sort and filters, from the hash), and the way back.
  function navigate(id) {
    var prev = document.getElementById("image-prev"), next = document.getElementById("image-next");
    var back = document.getElementById("image-back"), where = document.getElementById("image-where");
    var state = S.parse(window.location.hash);
    back.href = "explorer.html" + S.format(state);
    S.whenData(function (d) {
      S.settle(d, state);
      var list = S.select(d, state, false), at = list.indexOf(positionOf(id));
      var go = function (link, k) {
        if (k < 0 || k >= list.length) { link.removeAttribute("href"); link.setAttribute("aria-disabled", "true"); return; }
        link.href = S.format(state, d.ids[list[k]]);
        link.removeAttribute("aria-disabled");
      };
      go(prev, at < 0 ? -1 : at - 1);
      go(next, at < 0 ? 0 : at + 1);
      where.textContent = at < 0 ? "(not among the explorer's " + list.length + " selected images; next: its first)"
        : "image " + (at + 1) + " of the explorer's " + list.length + " (sorted by " + S.SORTS[state.sort] + ")";
    });
  }

  function show(id) {
    var r = records[id];
    var view = document.getElementById("image-view");
    view.textContent = "";
    document.getElementById("image-title").textContent = "#" + id + " (class " + r.class_name + ")";
    document.title = document.title.split(":")[0] + ": image #" + id;
    navigate(id);
    var toc = el("nav", "toc");
    index.models.forEach(function (model) {
      var link = el("a", null, "model with " + model.label);
      link.addEventListener("click", function (e) {  // the hash holds the image and the explorer's state
        e.preventDefault();
        document.getElementById(model.anchor).scrollIntoView();
      });
      link.href = "#";
      toc.appendChild(link);
    });
    view.appendChild(toc);
    r.models.forEach(function (m, which) { showModel(view, r, m, which); });
    status("");
    view.setAttribute("data-image-id", String(id));
  }

  window.robustvizImageChunk = function (text) {
    window.robustvizUnpack(text).then(function (chunk) {
      chunk.forEach(function (r) { records[r.image_id] = r; });
      if (wanted !== null && records[wanted]) show(wanted);
    }).catch(function (err) { status("Could not read the image's data: " + err); });
  };

  function load() {
    var id = S.parse(window.location.hash).id;
    if (id === null || isNaN(id)) id = index.ids[0];
    wanted = id;
    if (records[id]) {
      show(id);
      return;
    }
    var chunk = index.chunks.filter(function (c) { return id >= c.first && id <= c.last; })[0];
    if (!chunk || positionOf(id) === undefined) {
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
