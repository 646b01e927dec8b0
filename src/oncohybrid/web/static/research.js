// CRF entry (issue #16): REDCap branching logic and calculated fields in the browser.
// A small, safe evaluator written here (no eval): the same grammar and semantics as
// oncohybrid.research.logic on the server, which checks every saved value again.
(function () {
  "use strict";
  var form = document.getElementById("crf-form");
  if (!form) { return; }

  var TOKEN = /\s+|(\[[A-Za-z0-9_\-]+(?:\([A-Za-z0-9_\-.]+\))?(?::[A-Za-z0-9_\-]+)?\])|(\d+(?:\.\d*)?|\.\d+)|('[^']*'|"[^"]*")|(<>|!=|<=|>=|==|=|<|>|\+|-|\*|\/|\^|\(|\)|,)|([A-Za-z_][A-Za-z0-9_]*)/y;

  function tokens(text) {
    var out = [], pos = 0, m;
    while (pos < text.length) {
      TOKEN.lastIndex = pos;
      m = TOKEN.exec(text);
      if (!m || m.index !== pos) { throw new Error("bad logic"); }
      pos = TOKEN.lastIndex;
      if (m[1]) {
        // an event prefix [event][field]: keep the field only
        if (out.length && out[out.length - 1].k === "ref" && text.charAt(m.index - 1) === "]") {
          out.pop();
        }
        out.push({ k: "ref", v: m[1] });
      } else if (m[2]) { out.push({ k: "num", v: parseFloat(m[2]) }); }
      else if (m[3]) { out.push({ k: "str", v: m[3].slice(1, -1) }); }
      else if (m[4]) { out.push({ k: "op", v: m[4] }); }
      else if (m[5]) {
        var low = m[5].toLowerCase();
        out.push(low === "and" || low === "or" || low === "not" ? { k: "op", v: low } : { k: "name", v: low });
      }
    }
    return out;
  }

  function parse(text) {
    var toks = tokens(text), i = 0;
    function peek() { return toks[i]; }
    function isOp(v) { var t = toks[i]; return t && t.k === "op" && t.v === v; }
    function take() { if (i >= toks.length) { throw new Error("ends early"); } return toks[i++]; }
    function or_() { var n = and_(); while (isOp("or")) { take(); n = { t: "or", a: [n, and_()] }; } return n; }
    function and_() { var n = not_(); while (isOp("and")) { take(); n = { t: "and", a: [n, not_()] }; } return n; }
    function not_() { if (isOp("not")) { take(); return { t: "not", a: [not_()] }; } return cmp(); }
    function cmp() {
      var n = add(), t = peek();
      if (t && t.k === "op" && ["=", "==", "<>", "!=", "<", "<=", ">", ">="].indexOf(t.v) >= 0) {
        take();
        var op = t.v === "==" ? "=" : (t.v === "!=" ? "<>" : t.v);
        n = { t: "bin", op: op, a: [n, add()] };
      }
      return n;
    }
    function add() { var n = mul(), t; while ((t = peek()) && t.k === "op" && (t.v === "+" || t.v === "-")) { take(); n = { t: "bin", op: t.v, a: [n, mul()] }; } return n; }
    function mul() { var n = pow(), t; while ((t = peek()) && t.k === "op" && (t.v === "*" || t.v === "/")) { take(); n = { t: "bin", op: t.v, a: [n, pow()] }; } return n; }
    function pow() { var n = unary(); if (isOp("^")) { take(); n = { t: "bin", op: "^", a: [n, pow()] }; } return n; }
    function unary() { if (isOp("-")) { take(); return { t: "neg", a: [unary()] }; } if (isOp("+")) { take(); return unary(); } return atom(); }
    function atom() {
      var t = take();
      if (t.k === "num") { return { t: "lit", v: t.v }; }
      if (t.k === "str") { return { t: "lit", v: t.v }; }
      if (t.k === "ref") {
        var m = /^\[([A-Za-z0-9_\-]+)(?:\(([^)]+)\))?/.exec(t.v);
        return { t: "ref", name: m[1], opt: m[2] || null };
      }
      if (t.k === "op" && t.v === "(") { var n = or_(); if (!isOp(")")) { throw new Error(") expected"); } take(); return n; }
      if (t.k === "name") {
        if (t.v === "true" || t.v === "false") { return { t: "lit", v: t.v === "true" ? 1 : 0 }; }
        if (!isOp("(")) { throw new Error("unknown word"); }
        take();
        var args = [];
        if (!isOp(")")) { args.push(or_()); while (isOp(",")) { take(); args.push(or_()); } }
        take();
        return { t: "call", f: t.v, a: args };
      }
      throw new Error("unexpected token");
    }
    var tree = or_();
    if (i !== toks.length) { throw new Error("trailing tokens"); }
    return tree;
  }

  function num(v) {
    if (typeof v === "boolean") { return v ? 1 : 0; }
    if (typeof v === "number") { return isNaN(v) ? null : v; }
    var s = String(v === undefined || v === null ? "" : v).trim();
    if (s === "" || isNaN(Number(s))) { return null; }
    return Number(s);
  }
  function text(v) {
    if (typeof v === "boolean") { return v ? "1" : "0"; }
    return v === undefined || v === null ? "" : String(v);
  }
  function truth(v) { if (typeof v === "boolean") { return v; } var n = num(v); return n !== null && n !== 0; }
  function nums(args) { return args.map(num).filter(function (x) { return x !== null; }); }
  function roundTo(f) {
    return function (x, p) { var n = num(x); if (n === null) { return ""; } var s = Math.pow(10, num(p) || 0); return f(n * s) / s; };
  }
  var FN = {
    round: roundTo(function (x) { return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(-x + 0.5); }),
    roundup: roundTo(Math.ceil), rounddown: roundTo(Math.floor),
    sqrt: function (x) { var n = num(x); return n === null || n < 0 ? "" : Math.sqrt(n); },
    abs: function (x) { var n = num(x); return n === null ? "" : Math.abs(n); },
    min: function () { var a = nums([].slice.call(arguments)); return a.length ? Math.min.apply(null, a) : ""; },
    max: function () { var a = nums([].slice.call(arguments)); return a.length ? Math.max.apply(null, a) : ""; },
    sum: function () { var a = nums([].slice.call(arguments)); return a.length ? a.reduce(function (x, y) { return x + y; }, 0) : ""; },
    mean: function () { var a = nums([].slice.call(arguments)); return a.length ? a.reduce(function (x, y) { return x + y; }, 0) / a.length : ""; },
    isnumber: function (x) { return num(x) !== null; },
    isblankormissingcode: function (x) { return text(x).trim() === ""; },
    contains: function (a, b) { return text(a).toLowerCase().indexOf(text(b).toLowerCase()) >= 0; },
    datediff: function (a, b, unit) {
      var d1 = Date.parse(text(a)), d2 = Date.parse(text(b));
      if (isNaN(d1) || isNaN(d2)) { return ""; }
      var per = { y: 365.2425 * 864e5, M: 30.44 * 864e5, d: 864e5, h: 36e5, m: 6e4, s: 1e3 }[text(unit) || "d"];
      var last = arguments.length > 3 ? arguments[arguments.length - 1] : false;
      var signed = ["ymd", "mdy", "dmy"].indexOf(text(last)) < 0 && truth(last);
      var v = (d2 - d1) / per;
      return signed ? v : Math.abs(v);
    }
  };

  function ev(n, vals) {
    switch (n.t) {
      case "lit": return n.v;
      case "ref":
        if (n.opt !== null) { return vals[n.name + "___" + n.opt.toLowerCase()] === "1" ? "1" : "0"; }
        return vals[n.name] === undefined ? "" : vals[n.name];
      case "and": return truth(ev(n.a[0], vals)) && truth(ev(n.a[1], vals));
      case "or": return truth(ev(n.a[0], vals)) || truth(ev(n.a[1], vals));
      case "not": return !truth(ev(n.a[0], vals));
      case "neg": { var x = num(ev(n.a[0], vals)); return x === null ? "" : -x; }
      case "call":
        if (n.f === "if") { return ev(truth(ev(n.a[0], vals)) ? n.a[1] : n.a[2], vals); }
        if (!FN[n.f]) { return ""; }
        return FN[n.f].apply(null, n.a.map(function (a) { return ev(a, vals); }));
      case "bin": {
        var a = ev(n.a[0], vals), b = ev(n.a[1], vals), na = num(a), nb = num(b), op = n.op;
        if (["=", "<>", "<", "<=", ">", ">="].indexOf(op) >= 0) {
          var x, y;
          if (na !== null && nb !== null) { x = na; y = nb; }
          else {
            if (op !== "=" && op !== "<>" && (text(a) === "" || text(b) === "")) { return false; }
            x = text(a); y = text(b);
          }
          return { "=": x === y, "<>": x !== y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y }[op];
        }
        if (na === null || nb === null) { return ""; }
        if (op === "+") { return na + nb; }
        if (op === "-") { return na - nb; }
        if (op === "*") { return na * nb; }
        if (op === "/") { return nb === 0 ? "" : na / nb; }
        if (op === "^") { return Math.pow(na, nb); }
      }
    }
    return "";
  }

  function formatCalc(v) {
    if (typeof v === "boolean") { return v ? "1" : "0"; }
    if (typeof v === "number") { return isFinite(v) ? String(Number(v.toPrecision(10))) : ""; }
    return text(v);
  }

  function values() {
    var vals = {};
    form.querySelectorAll("input.logic-context").forEach(function (el) { vals[el.dataset.name] = el.value; });
    form.querySelectorAll(".field").forEach(function (div) {
      var name = div.dataset.name, type = div.dataset.type;
      if (type === "checkbox") {
        div.querySelectorAll("input[type=checkbox]").forEach(function (cb) { vals[cb.name] = cb.checked ? "1" : "0"; });
      } else if (type === "radio" || type === "yesno" || type === "truefalse") {
        var c = div.querySelector("input[type=radio]:checked");
        vals[name] = c ? c.value : "";
      } else {
        var el = div.querySelector("input, select, textarea");
        if (el) { vals[name] = div.classList.contains("hidden-by-logic") ? "" : el.value; }
      }
    });
    return vals;
  }

  var compiled = {};
  function tree(textValue) {
    if (!(textValue in compiled)) {
      try { compiled[textValue] = parse(textValue); } catch (e) { compiled[textValue] = null; }
    }
    return compiled[textValue];
  }

  function refresh() {
    // Twice: a field shown by logic may feed another field's logic or calculation.
    for (var pass = 0; pass < 2; pass++) {
      var vals = values();
      form.querySelectorAll(".field[data-branching]").forEach(function (div) {
        var t = tree(div.dataset.branching);
        var show = t === null ? true : truth(ev(t, vals));
        div.classList.toggle("hidden-by-logic", !show);
      });
      vals = values();
      form.querySelectorAll(".field[data-calc]").forEach(function (div) {
        var t = tree(div.dataset.calc), el = div.querySelector("input");
        if (t !== null && el) { el.value = formatCalc(ev(t, vals)); vals[div.dataset.name] = el.value; }
      });
    }
  }

  function checkValidation(el) {
    var v = el.dataset.validation, s = el.value.trim(), ok = true;
    if (!v || s === "") { el.classList.remove("invalid"); return; }
    if (v === "integer") { ok = /^[+-]?\d+$/.test(s); }
    else if (v === "number" || /^number_\ddp/.test(v)) { ok = !isNaN(Number(s)); }
    else if (v.indexOf("date_") === 0) { ok = /^\d{4}-\d{2}-\d{2}$/.test(s) || /^\d{2}-\d{2}-\d{4}$/.test(s); }
    el.classList.toggle("invalid", !ok);
  }

  form.addEventListener("input", function (e) {
    if (e.target.dataset && e.target.dataset.validation) { checkValidation(e.target); }
    refresh();
  });
  form.addEventListener("change", refresh);
  refresh();
}());
