// Draws every chart on the page. Specs sit in <script type="application/json"> elements (inline
// data works from file://, where fetch() of a local file does not); each container says which.
(function () {
  "use strict";

  function fail(el, err) {
    el.setAttribute("data-rendered", "error");
    el.textContent = "This chart could not be drawn: " + (err && err.message ? err.message : err);
    console.error(err);
  }

  // Draw one spec into a .chart element; data-rendered records the outcome ("true" or "error").
  function draw(el, spec) {
    if (typeof window.vegaEmbed !== "function") {
      fail(el, "static/vega.js did not load");
      return;
    }
    window.vegaEmbed(el, spec, {
      renderer: "canvas",
      actions: { export: true, source: false, compiled: false, editor: false }
    }).then(function (result) {
      // Kept for the browser test and for anyone scripting the page from the console.
      (window.robustvizViews = window.robustvizViews || {})[el.id || el.getAttribute("data-spec")] = result.view;
      el.setAttribute("data-rendered", "true");
    }).catch(function (err) {
      fail(el, err);
    });
  }
  window.robustvizDraw = draw;

  function drawAll() {
    document.querySelectorAll("[data-spec]").forEach(function (el) {
      var spec;
      try {
        spec = JSON.parse(document.getElementById(el.getAttribute("data-spec")).textContent);
      } catch (err) {
        fail(el, err);
        return;
      }
      draw(el, spec);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
