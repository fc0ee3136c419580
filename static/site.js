// Draws every chart on the page. Specs sit in <script type="application/json"> elements (inline
// data works from file://, where fetch() of a local file does not); each container says which.
(function () {
  "use strict";

  function fail(el, err) {
    el.setAttribute("data-rendered", "error");
    el.textContent = "This chart could not be drawn: " + (err && err.message ? err.message : err);
    console.error(err);
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-spec"));
    var spec;
    try {
      spec = JSON.parse(source.textContent);
    } catch (err) {
      fail(el, err);
      return;
    }
    window.vegaEmbed(el, spec, {
      renderer: "canvas",
      actions: { export: true, source: false, compiled: false, editor: false }
    }).then(function (result) {
      // Kept for the browser test and for anyone scripting the page from the console.
      (window.robustvizViews = window.robustvizViews || {})[el.getAttribute("data-spec")] = result.view;
      el.setAttribute("data-rendered", "true");
    }).catch(function (err) {
      fail(el, err);
    });
  }

  function drawAll() {
    if (typeof window.vegaEmbed !== "function") {
      document.querySelectorAll("[data-spec]").forEach(function (el) {
        fail(el, "static/vega.js did not load");
      });
      return;
    }
    document.querySelectorAll("[data-spec]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
