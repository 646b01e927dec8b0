// Presentation mode of a tumour-board case: keyboard navigation (no inline script: CSP).
(function () {
  "use strict";
  var root = document.getElementById("present-case");
  if (!root) { return; }
  function typing(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
  }
  function go(url) { if (url) { window.location.assign(url); } }
  document.addEventListener("keydown", function (ev) {
    if (typing(ev) || ev.altKey || ev.ctrlKey || ev.metaKey) { return; }
    var key = ev.key;
    if (key === "ArrowRight" || key === "PageDown" || key === "n") {
      ev.preventDefault(); go(root.dataset.next || root.dataset.agenda);
    } else if (key === "ArrowLeft" || key === "PageUp" || key === "p") {
      ev.preventDefault(); go(root.dataset.prev);
    } else if (key === "Escape") {
      ev.preventDefault(); go(root.dataset.agenda);
    } else if (key === "t" || key === "T") {
      var d = document.getElementById("rule-trace");
      if (d) { ev.preventDefault(); d.open = !d.open; }
    } else if (key === "d" || key === "D") {
      var r = document.getElementById("recommendation");
      if (r) { ev.preventDefault(); r.scrollIntoView({block: "center"}); r.focus(); }
    }
  });
})();
