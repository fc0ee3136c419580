// A page's per-model sections (section[data-model-section]) shown one at a time, picked by the buttons
// of nav.model-switch: the models are compared in the charts above them, and a model's own dashboard is
// read alone. Without JavaScript every section shows and the buttons' links are a table of contents.
// The picked model is the address's hash (#cnn-p0.2, or any anchor inside its section), so a link opens
// the right one; the query (?pick.… of the charts) is kept.
(function () {
  "use strict";
  var nav = document.querySelector("nav.model-switch");
  if (!nav) return;
  var sections = Array.prototype.slice.call(document.querySelectorAll("section[data-model-section]"));
  var links = Array.prototype.slice.call(nav.querySelectorAll("a[data-model]"));
  if (!sections.length) return;

  // The model whose section holds the element the hash names; null when it names none.
  function fromHash() {
    var id = decodeURIComponent(window.location.hash.replace(/^#/, ""));
    var target = id && document.getElementById(id);
    var section = target && target.closest("section[data-model-section]");
    return section ? section.getAttribute("data-model-section") : null;
  }

  function show(key, scroll) {
    sections.forEach(function (s) { s.hidden = s.getAttribute("data-model-section") !== key; });
    links.forEach(function (a) {
      var on = a.getAttribute("data-model") === key;
      if (on) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    });
    if (scroll) {
      var target = document.getElementById(decodeURIComponent(window.location.hash.replace(/^#/, "")));
      if (target) target.scrollIntoView();
    }
  }

  links.forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var key = a.getAttribute("data-model");
      try {
        window.history.replaceState(window.history.state, "", window.location.search + "#" + encodeURIComponent(key));
      } catch (err) { /* a browser that will not rewrite a file:// address: the switch still works */ }
      show(key, false);
    });
  });
  window.addEventListener("hashchange", function () { var key = fromHash(); if (key) show(key, true); });
  var first = fromHash();
  show(first || sections[0].getAttribute("data-model-section"), Boolean(first));
})();
