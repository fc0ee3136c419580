// The site's one namespace, window.robustviz, and the DOM helpers every page script shares.
// Everything from the data is inserted as text (textContent), never as markup.
(function () {
  "use strict";
  var R = window.robustviz = window.robustviz || {};

  // An element with an optional class and text.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  // An <option> of ``select`` with its value and label.
  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
    return o;
  }

  // A table of text cells: headers, then rows of strings.
  function table(headers, rows, className) {
    var t = el("table", className || "figures");
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

  // The outcome mark of the grid, the legends and the image view: its shape tells the outcome as its
  // colour does (filled: fooled, ring: not fooled, cross: wrong before), so no one needs the colour.
  function mark(outcome) {
    var m = el("span", "mark " + outcome.replace(/ /g, "-"));
    m.setAttribute("aria-hidden", "true");
    return m;
  }

  R.dom = { el: el, option: option, table: table, mark: mark };
})();
