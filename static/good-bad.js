// Good & bad: per model, one table per attack and operating point; the hash (#cnn-p0.2-lbfgs,
// #cnn-p0.2-lbfgs-confident) picks which one each model shows, the run's ranking attack at its minimal
// point by default. The attack links keep the point shown and the point links the attack shown. Without
// scripts every table shows, one after another.
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
      function exact(attack, point) {
        return panels.filter(function (p) { return p.dataset.attack === attack && p.dataset.point === point; })[0];
      }
      // The panel of (attack, point), or of the attack at its first point where it has no such one.
      function panel(attack, point) {
        return exact(attack, point) || panels.filter(function (p) { return p.dataset.attack === attack; })[0];
      }
      function link(a, target, current) {
        if (target) a.setAttribute("href", "#" + target.id);
        if (current) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
      }
      section.querySelectorAll(".attack-switch a").forEach(function (a) {
        link(a, panel(a.dataset.attack, want.dataset.point), a.dataset.attack === want.dataset.attack);
      });
      section.querySelectorAll(".point-switch a").forEach(function (a) {
        var target = exact(want.dataset.attack, a.dataset.point);
        link(a, target, a.dataset.point === want.dataset.point);
        a.hidden = !target;  // an attack without this point
      });
    });
  }
  window.addEventListener("hashchange", show);
  show();
})();
