// The per-image view: one page for every test image, chosen by the link's #id=N; the rest of the hash is
// the explorer's state (previous / next follow its sort and filter, and its model is the one shown). At
// the top: the image, its label, each model's clean prediction and one line per attack; then one model
// at a time, with a switch. The image's data comes from data/images-NNN.js (a <script> tag: fetch()
// fails from file://), packed.
(function () {
  "use strict";
  var R = window.robustviz, S = R.state, el = R.dom.el;
  var index = JSON.parse(document.getElementById("image-index").textContent);
  var probsTemplate = document.getElementById("spec-probs-template").textContent;
  var passHistogramTemplate = document.getElementById("spec-pass-histogram-template").textContent;
  var records = {}, requested = {}, wanted = null;
  var positions = {};
  index.ids.forEach(function (id, pos) { positions[id] = pos; });

  // Pixels large enough to see: 8x for 28-px digits (two pictures side by side on a phone), at least 2x.
  function scale() {
    var room = document.getElementById("image-view").clientWidth || window.innerWidth;
    return Math.max(2, Math.min(Math.max(2, Math.floor(224 / index.tiles.width)), Math.floor((room - 24) / (2 * index.tiles.width))));
  }

  function status(text) {
    document.getElementById("image-status").textContent = text;
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function tile(t, caption, zoom) {
    var cell = el("span", "cell");
    var pic = R.tile(t, caption);
    if (zoom) { pic.style.zoom = String(zoom); pic.classList.add("big"); }
    cell.appendChild(pic);
    cell.appendChild(el("span", "caption", caption));
    return cell;
  }

  // The perturbation, drawn by the browser from the two pictures: the adversarial over the original
  // with mix-blend-mode "difference" gives |adversarial - original| per pixel; brightness(1 / L-inf)
  // stretches the largest change to full scale, and invert() makes unchanged pixels white.
  // (A canvas cannot read pixels of images opened from file://, and a stored heatmap per image and
  // attack would double the site.)
  function perturbation(original, adversarial, linf, caption, zoom) {
    var cell = el("span", "cell");
    var box = el("span", "perturbation");
    box.style.width = original.width * zoom + "px";
    box.style.height = original.height * zoom + "px";
    [original, adversarial].forEach(function (t, k) {
      var pic = R.tile(t, "");
      pic.style.zoom = String(zoom);
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

  function chart(parent, template, name, rows, label, key) {
    var box = el("div", "chart");
    box.id = "chart-" + name + "-" + key;
    box.setAttribute("role", "figure");  // not "img": it holds the chart's actions menu, which can be focused
    box.setAttribute("aria-label", label);
    parent.appendChild(box);
    var spec = JSON.parse(template);
    spec.datasets = spec.datasets || {};
    spec.datasets[name] = rows;
    R.draw(box, spec);
  }

  function fold(summary, content, open) {
    var d = el("details", "fold");
    d.appendChild(el("summary", null, summary));
    d.appendChild(content);
    if (open) d.open = true;
    return d;
  }

  // A record's lists follow index.fields; turn one into an object by those names.
  function named(kind, values) {
    var out = {};
    index.fields[kind].forEach(function (name, k) { out[name] = values[k]; });
    return out;
  }

  function place(sheets, pos) {
    return R.place(index.tiles, sheets, pos);
  }

  // One model's attacks of the image: objects by ATTACK_FIELDS, with attack, point and the adversarial's tile.
  function attacksOf(r, m, which) {
    var out = [];
    m.attacks.forEach(function (values, k) {
      if (values === null) return;  // not attacked: the attack ran on a subset of the test images
      var a = named("attacks", values);
      a.attack = index.attack_points[k][0];
      a.point = index.attack_points[k][1];
      a.adversarial = place(index.tiles.attacks[which][a.attack][a.point].adversarial, r.pos);
      out.push(a);
    });
    return out;
  }

  function limit(a) { return index.limit_captions[a.attack]; }

  // The attack's own figure of an adversarial ("ε = 0.172", "c = 0.4", "D = 23.1"), or "".
  function own(a) {
    var card = index.cards[a.attack], v = card.own_column ? a[card.own_column] : null;
    return v === null || v === undefined ? "" : card.own_symbol + " = " + fmt(v, 3);
  }

  // An operating point as the picture's caption names it: the minimal point of an attack with a list of
  // budgets is its smallest budget that fools, which need not be on the boundary, so it says so.
  function pointName(a) {
    var card = index.cards[a.attack];
    if (a.point === "minimal" && card.own_column === "min_eps" && index.budgets[a.attack]) return "smallest ε that fools";
    return a.point;
  }

  // What an attack did at one operating point, in a few words. P(9): the model's probability (dropout
  // off) of the class it becomes.
  function outcome(a) {
    if (!a.clean_correct) return "not attacked (wrong before)";
    if (!a.success) return a.point === "confident" ? "no wrong class at P ≥ " + index.kappa + " within " + limit(a)
      : "not fooled within " + limit(a);
    var to = index.class_names[a.adv_pred];
    return "→ " + to + ", P(" + to + ") = " + fmt(a.adv_prob, 2) + (own(a) ? ", " + own(a) : "");
  }

  // The two points' adversarials are one picture when the attack found the same one for both.
  function same(x, y) {
    return x.success && y.success && x.adv_pred === y.adv_pred && x.l2 === y.l2 && x.linf === y.linf && x.adv_prob === y.adv_prob;
  }

  // An outcome in the summary's few characters: "→ 8 (0.47)", "not fooled", "p ≥ 0.9 not reached".
  function short(a) {
    if (!a.success) return a.point === "confident" ? "P ≥ " + index.kappa + " not reached" : "not fooled";
    // No-break spaces inside "ε 0.176" and "→ 8": a narrow cell breaks between adversarials, not inside one.
    return (own(a) ? own(a).replace(" = ", "\u00a0") + "\u00a0" : "") + "→\u00a0" + index.class_names[a.adv_pred] +
      "\u00a0(" + fmt(a.adv_prob, 2) + ")";
  }

  // ---- the summary at the top -------------------------------------------------------------------
  function summary(r, chosen) {
    var box = el("section", "image-summary");
    box.appendChild(tile(place(index.tiles.original, r.pos), "original, class " + r.class_name, scale()));
    var rows = [], models = r.models.map(function (m, which) { return attacksOf(r, m, which); });
    rows.push(["clean prediction (dropout off)"].concat(models.map(function (attacks, which) {
      var pred = index.class_names[r.models[which].plain_pred];
      return pred + (r.models[which].plain_pred === index.labels[r.pos] ? " (right)" : " (wrong)");
    })));
    index.attacks.forEach(function (attack) {
      rows.push([index.cards[attack].label].concat(models.map(function (attacks) {
        var mine = attacks.filter(function (a) { return a.attack === attack; });
        if (!mine.length) return "not attacked (a subset)";
        if (!mine[0].clean_correct) return "not attacked (wrong before)";
        return mine.map(short).join(", ");
      })));
    });
    var t = R.dom.table([""].concat(index.models.map(function (m) { return m.label; })), rows, "figures summary-table");
    t.appendChild(el("caption", null, "Per attack: its minimal, then its confident adversarial: the attack's own figure " +
      "(ε, c or D), the class it becomes and the model's probability of it (dropout off), or that it was not fooled within " +
      "the attack's budget."));
    t.querySelectorAll("thead th").forEach(function (th, k) { if (k && index.models[k - 1].key === chosen) th.classList.add("chosen"); });
    box.appendChild(t);
    return box;
  }

  // The model switch: real links, each keeping the image and the explorer's state.
  function switcher(id, chosen) {
    var nav = el("nav", "toc model-switch");
    nav.setAttribute("aria-label", "model shown");
    nav.appendChild(el("span", "note", "Model shown:"));
    index.models.forEach(function (model) {
      var link = el("a", null, model.label);
      link.href = S.format(Object.assign(S.parse(window.location.hash), { model: model.key }), id);
      if (model.key === chosen) link.setAttribute("aria-current", "true");
      nav.appendChild(link);
    });
    return nav;
  }

  // ---- one model --------------------------------------------------------------------------------
  function attackRows(section, r, attacks, zoom) {
    var original = place(index.tiles.original, r.pos);
    var absent = index.attacks.filter(function (a) { return !attacks.some(function (x) { return x.attack === a; }); });
    if (attacks.length && !attacks[0].clean_correct) {  // wrong before the attack: every attack skipped it
      section.appendChild(el("p", "wrong-before", "Wrong before any attack (the model with dropout off predicts " +
        index.class_names[attacks[0].adv_pred] + "), so no attack was run on it."));
      return;
    }
    section.appendChild(el("p", "note", "Beside each adversarial, its perturbation |adversarial − original|, " +
      "scaled so that its largest change is black (× 1 / L∞); white: unchanged."));
    index.attacks.forEach(function (attack) {
      var mine = attacks.filter(function (a) { return a.attack === attack; });
      if (!mine.length) return;
      var row = el("div", "attack-row");
      row.setAttribute("data-attack", attack);
      row.appendChild(el("h3", null, index.cards[attack].label));
      var both = mine.length === 2 && same(mine[0], mine[1]);
      (both ? mine.slice(0, 1) : mine).forEach(function (a) {
        var at = el("div", "point");
        at.setAttribute("data-point", both ? "minimal confident" : a.point);
        at.appendChild(tile(a.adversarial, (both ? pointName(a) + " and confident (the same adversarial)" : pointName(a)) +
          ": " + outcome(a), zoom));
        at.appendChild(perturbation(original, a.adversarial, a.linf,
          // What white and black mean is said once, above the rows (attackRows): two lines here, not four.
          a.linf > 0 ? "|change| × " + (1 / a.linf).toFixed(1) + ": L∞ " + fmt(a.linf, 3) + ", L2 " + fmt(a.l2, 3) +
            ", " + a.l0 + " pixels" : "no pixel changed", zoom));
        row.appendChild(at);
      });
      var noise = mine.filter(function (a) { return a.noise_pred !== null; }).map(function (a) {
        return a.point + " → " + index.class_names[a.noise_pred];
      });
      if (noise.length) {
        row.appendChild(el("p", "note", "Noise controls (random perturbations of the same " +
          (index.cards[attack].norm === "linf" ? "L∞" : "L2") + ", dropout off): " + noise.join("; ") + "."));
      }
      section.appendChild(row);
    });
    if (absent.length) {
      section.appendChild(el("p", "note", "Not attacked by " + absent.map(function (a) { return index.cards[a].label; })
        .join(", ") + " (run on a subset of the test images)."));
    }
  }

  function figureTable(attacks) {
    var names = index.class_names;
    return R.dom.table(
      ["attack", "operating point", "success", "prediction", "probability", "pixels changed", "L2", "L∞", "D",
       "flat pixels", "iterations", "its own figure", "noise L2", "noise L∞", "noise → prediction"],
      attacks.map(function (a) {
        var card = index.cards[a.attack], own = card.own_column ? a[card.own_column] : null;
        return [card.label, a.point,
                !a.clean_correct ? "not attacked" : (a.success ? "yes" : "no, within " + limit(a)),
                names[a.adv_pred], fmt(a.adv_prob, 3), String(a.l0), fmt(a.l2, 3),
                fmt(a.linf, 3), fmt(a.perceptual_distance, 1), String(a.flat_pixels_changed), String(a.iterations),
                own === null || own === undefined ? "–" : card.own_symbol + " " + fmt(own, 4),
                fmt(a.noise_l2, 3), fmt(a.noise_linf, 3), a.noise_pred === null ? "–" : names[a.noise_pred]];
      }));
  }

  function conditionsOf(m) {
    var out = [];
    m.conditions.forEach(function (values, k) {
      if (values === null) return;
      var c = named("conditions", values);
      c.condition = index.condition_labels[k];  // "FGSM confident", as every page names it
      out.push(c);
    });
    return out;
  }

  function uncertainty(section, conditions, key) {
    var names = index.class_names;
    section.appendChild(fold("Uncertainty figures of the image and its adversarials (" + conditions.length + " image sets)",
      R.dom.table(["image", "mean prediction", "entropy", "mutual information", "passes wrong"], conditions.map(function (c) {
        return [c.condition, names[c.pred], fmt(c.entropy, 3), fmt(c.mutual_info, 3), fmt(100 * c.fooled_share, 0) + "%"];
      }))));
    var row = el("div", "charts-row");
    section.appendChild(row);
    var probs = [], histogram = [];
    conditions.forEach(function (c) {
      if (c.mean_probs === null) return;  // noise controls: the table gives their figures
      c.mean_probs.forEach(function (prob, k) { probs.push({ condition: c.condition, class_name: names[k], prob: prob }); });
      var width = 1 / c.pass_histogram.length;
      var total = c.pass_histogram.reduce(function (a, b) { return a + b; }, 0) || 1;
      c.pass_histogram.forEach(function (count, k) {
        histogram.push({ condition: c.condition, lower: k * width, upper: (k + 1) * width, count: count, share: count / total });
      });
    });
    chart(row, probsTemplate, "probs", probs, "class probabilities before and after each attack", key);
    chart(row, passHistogramTemplate, "pass_histogram", histogram, "spread of the passes", key);
  }

  function neighbours(section, m) {
    if (!m.neighbours.length) return;
    section.appendChild(el("h3", null, "Nearest test images in feature space (penultimate features, dropout off)"));
    var near = el("div", "pictures neighbours");
    m.neighbours.forEach(function (n) {
      var link = el("a", "neighbour");
      link.href = S.format(S.parse(window.location.hash), n[0]);
      link.setAttribute("data-image-id", String(n[0]));
      var pos = positions[n[0]];
      link.appendChild(tile(place(index.tiles.original, pos),
        "#" + n[0] + " (" + index.class_names[index.labels[pos]] + "), distance " + fmt(n[1], 2), 2));
      near.appendChild(link);
    });
    section.appendChild(near);
  }

  function activations(section, m) {
    var maps = m.activations.map(function (values) { return named("activations", values); });
    if (!maps.length) return;
    var box = el("div");
    var layers = [];
    maps.forEach(function (a) { if (layers.indexOf(a.layer) < 0) layers.push(a.layer); });
    layers.forEach(function (layer) {
      box.appendChild(el("h4", null, layer));
      var strip = el("div", "maps");
      maps.filter(function (a) { return a.layer === layer; }).forEach(function (a) {
        strip.appendChild(tile(a, a.condition + " (" + a.maps + " maps)"));
      });
      box.appendChild(strip);
    });
    section.appendChild(fold("Activation maps (after each convolution, ReLU'd, one scale per layer)", box));
  }

  function showModel(view, r, which) {
    var model = index.models[which], m = r.models[which], attacks = attacksOf(r, m, which);
    var section = el("section", "model");
    section.setAttribute("data-model", model.key);
    section.id = model.anchor;
    section.appendChild(el("h2", null, "Model with " + model.label));
    attackRows(section, r, attacks, scale());
    if (attacks.length) section.appendChild(fold("Every figure of the attacks (" + attacks.length + " adversarials)", figureTable(attacks)));
    uncertainty(section, conditionsOf(m), model.key);
    neighbours(section, m);
    activations(section, m);
    view.appendChild(section);
  }

  // ---- navigation -------------------------------------------------------------------------------
  // Previous / next in the explorer's order (its sort and filters, from the hash), and the way back to
  // the explorer with this image as its active cell.
  function navigate(id) {
    var prev = document.getElementById("image-prev"), next = document.getElementById("image-next");
    var back = document.getElementById("image-back"), where = document.getElementById("image-where");
    var state = S.parse(window.location.hash);
    back.href = "explorer.html" + S.format(state, id);
    S.whenData(function (d) {
      S.settle(d, state);
      var list = S.select(d, state, false), at = list.indexOf(positions[id]);
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

  // ← and → move to the previous and next image, unless a form control has the keys.
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey || /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName)) return;
    var link = document.getElementById(e.key === "ArrowLeft" ? "image-prev" : e.key === "ArrowRight" ? "image-next" : "");
    if (link && link.getAttribute("href")) { e.preventDefault(); window.location.href = link.href; }
  });

  function chosenModel() {
    var key = S.parse(window.location.hash).model;
    return index.models.some(function (m) { return m.key === key; }) ? key : index.models[0].key;
  }

  function show(id) {
    var r = records[id], chosen = chosenModel();
    var view = document.getElementById("image-view");
    view.textContent = "";
    document.getElementById("image-title").textContent = "#" + id + " (class " + r.class_name + ")";
    document.title = document.title.split(":")[0] + ": image #" + id;
    navigate(id);
    view.appendChild(summary(r, chosen));
    view.appendChild(switcher(id, chosen));
    index.models.forEach(function (model, which) { if (model.key === chosen) showModel(view, r, which); });
    status("");
    view.setAttribute("data-image-id", String(id));
    view.setAttribute("data-model", chosen);
  }

  R.imageChunk = function (text) {
    R.unpack(text).then(function (chunk) {
      chunk.forEach(function (r) { records[r.image_id] = r; });
      if (wanted !== null && records[wanted]) show(wanted);
    }).catch(function (err) { status("Could not read the image's data: " + err); });
  };

  function load() {
    var id = S.parse(window.location.hash).id;
    if (id === null || isNaN(id)) id = index.ids[0];
    wanted = id;
    if (records[id]) { show(id); return; }
    var chunk = index.chunks.filter(function (c) { return id >= c.first && id <= c.last; })[0];
    if (!chunk || positions[id] === undefined) {
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
