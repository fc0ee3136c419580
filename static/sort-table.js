// Tables marked data-sortable sort by a column when its heading's button is pressed: numbers by the
// cell's data-sort value (an empty one, a number not measured, sorts last either way), text as text;
// pressing again reverses. The heading says the order (aria-sort), for screen readers as well.
(function () {
  "use strict";

  function compare(a, b, numeric) {
    if (a === "" || b === "") return a === b ? 0 : (a === "" ? 1 : -1);
    return numeric ? Number(a) - Number(b) : a.localeCompare(b);
  }

  function sortBy(table, column, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var key = function (row) { var c = row.cells[column]; return c ? (c.getAttribute("data-sort") || "") : ""; };
    var numeric = rows.every(function (row) { var v = key(row); return v === "" || isFinite(Number(v)); });
    rows.sort(function (a, b) {
      var ka = key(a), kb = key(b);
      if (ka === "" || kb === "") return compare(ka, kb, numeric);  // missing last in both directions
      return descending ? compare(kb, ka, numeric) : compare(ka, kb, numeric);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, k) {
      if (k === column) th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
  }

  document.querySelectorAll("table[data-sortable]").forEach(function (table) {
    table.tHead.querySelectorAll("button[data-sort-column]").forEach(function (button) {
      button.addEventListener("click", function () {
        var column = Number(button.getAttribute("data-sort-column"));
        var th = button.closest("th");
        sortBy(table, column, th.getAttribute("aria-sort") === "ascending");
      });
    });
  });
})();
