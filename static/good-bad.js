// Good & bad: per model, one table per attack; the hash (#cnn-p0.2-lbfgs) picks which one each model
// shows, the run's ranking attack by default. Without scripts every table shows, one after another.
(function () {
  "use strict";
  function show() {
    var id = window.location.hash.slice(1);
    document.querySelectorAll("section[data-model]").forEach(function (section) {
      var panels = [].slice.call(section.querySelectorAll(".gb-attack"));
      var want = panels.filter(function (p) { return p.id === id; })[0] ||
        section.querySelector(".gb-attack:not([hidden])[data-picked]") || section.querySelector(".gb-attack.default") || panels[0];
      panels.forEach(function (p) {
        p.hidden = p !== want;
        if (p === want) p.setAttribute("data-picked", "true"); else p.removeAttribute("data-picked");
      });
      section.querySelectorAll(".attack-switch a").forEach(function (a) {
        if (a.getAttribute("href") === "#" + want.id) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
      });
    });
  }
  window.addEventListener("hashchange", show);
  show();
})();
