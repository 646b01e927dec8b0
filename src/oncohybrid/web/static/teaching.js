/* Teaching file: case slice viewers (scroll, click points, two-click measurement) and
   quiz answers posted as JSON with immediate feedback (issue #14). No inline script (CSP). */
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------ slice viewers
  function initViewer(v) {
    const c = v.dataset.case, tp = v.dataset.tp;
    const img = v.querySelector(".tv-img"), slider = v.querySelector(".tv-slice");
    const label = v.querySelector(".tv-index"), mode = v.querySelector(".tv-mode");
    const frame = v.querySelector(".tv-frame"), pointsText = v.querySelector(".tv-points");
    const takesPoints = v.dataset.clicks === "true" || v.dataset.measure === "true";
    let info = null;
    v.points = [];

    function redraw() {
      v.querySelectorAll(".tv-mark").forEach(function (m) { m.remove(); });
      const k = Number(slider.value);
      v.points.forEach(function (p, n) {
        if (p.index !== k) return;
        const m = el("span", "tv-mark");
        m.style.left = (img.offsetLeft + p.fx * img.clientWidth) + "px";
        m.style.top = (img.offsetTop + p.fy * img.clientHeight) + "px";
        m.title = "point " + (n + 1);
        frame.appendChild(m);
      });
      if (pointsText) {
        pointsText.textContent = v.points.length ? v.points.length + " point(s): " +
          v.points.map(function (p) { return "slice " + (p.index + 1); }).join(", ") : "no point yet";
      }
      v.dataset.points = String(v.points.length);
    }

    function show() {
      if (!info) return;
      const k = Number(slider.value);
      label.textContent = (k + 1) + " / " + info.planes.axial.count;
      img.dataset.loaded = "false";
      img.src = "/api/teaching/cases/" + encodeURIComponent(c) + "/tp/" + tp + "/slice/axial/" +
        k + ".png?mode=" + mode.value + "&suv_max=" + (info.suv_max_default || 8);
      v.dataset.index = String(k);
      const keyIndex = v.querySelector(".key-index");
      if (keyIndex) keyIndex.value = String(k);
    }

    img.addEventListener("load", function () { img.dataset.loaded = "true"; redraw(); });
    slider.addEventListener("input", show);
    mode.addEventListener("change", show);
    img.addEventListener("wheel", function (e) {
      e.preventDefault();
      slider.value = String(Number(slider.value) + (e.deltaY < 0 ? 1 : -1));
      show();
    }, { passive: false });

    if (takesPoints) {
      img.addEventListener("click", function (e) {
        const r = img.getBoundingClientRect();
        const fx = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
        const fy = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
        const measuring = v.dataset.measure === "true";
        if (measuring && v.points.length >= 2) v.points = [];
        v.points.push({ orientation: "axial", index: Number(slider.value), fx: fx, fy: fy });
        redraw();
        if (measuring && v.points.length === 2 && info) {
          const a = v.points[0], b = v.points[1];
          const w = info.planes.axial.width_mm, h = info.planes.axial.height_mm;
          const mm = Math.hypot((b.fx - a.fx) * w, (b.fy - a.fy) * h);
          const input = v.closest(".q-card") && v.closest(".q-card").querySelector(".a-length");
          if (input) input.value = mm.toFixed(1);
        }
      });
      const clear = v.querySelector(".tv-clear");
      if (clear) clear.addEventListener("click", function () { v.points = []; redraw(); });
    }

    fetch("/api/teaching/cases/" + encodeURIComponent(c) + "/tp/" + tp + "/info")
      .then(function (r) { return r.json(); })
      .then(function (j) {
        info = j;
        const n = j.planes.axial.count;
        slider.max = String(n - 1);
        const start = v.dataset.start !== undefined ? Number(v.dataset.start) : Math.floor(n / 2);
        slider.value = String(Math.min(n - 1, Math.max(0, start)));
        img.style.aspectRatio = j.planes.axial.width_mm + " / " + j.planes.axial.height_mm;
        show();
        v.dataset.count = String(n);
        v.dataset.ready = "true";
      });
  }
  document.querySelectorAll(".tviewer").forEach(initViewer);

  // ------------------------------------------------------------ quiz answers
  const quizEl = document.getElementById("quiz");

  function renderFeedback(card, j) {
    const fb = card.querySelector(".feedback");
    fb.textContent = "";
    if (j.score === undefined) {
      fb.appendChild(el("p", "muted", "Answer recorded; the reference is shown when you commit."));
      return;
    }
    if (j.pending) {
      fb.appendChild(el("p", "muted", "Answer recorded; a mentor marks free-text answers."));
      return;
    }
    const verdict = j.correct ? "Right" : (j.score ? "Partly right" : "Wrong");
    fb.appendChild(el("p", "verdict " + (j.correct ? "right" : (j.score ? "partial" : "wrong")),
      verdict + " — score " + j.score));
    const ul = el("ul", "trace");
    (j.result.feedback || []).forEach(function (t) { ul.appendChild(el("li", "", t)); });
    fb.appendChild(ul);
    if (j.teaching_points) {
      const p = el("p", "prose");
      p.appendChild(el("strong", "", "Teaching points: "));
      p.appendChild(document.createTextNode(j.teaching_points));
      fb.appendChild(p);
    }
    fb.dataset.score = String(j.score);
    fb.dataset.correct = j.correct ? "true" : "false";
    const total = document.getElementById("quiz-score");
    if (total) {
      const score = Number(total.dataset.score) + Number(j.score);
      const max = Number(total.dataset.max) + 1;
      total.dataset.score = String(score);
      total.dataset.max = String(max);
      total.textContent = (Math.round(score * 100) / 100) + " of " + max;
    }
  }

  if (quizEl) {
    const quiz = quizEl.dataset.quiz;
    document.querySelectorAll(".q-card .answer-form").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        const card = form.closest(".q-card"), kind = card.dataset.kind;
        const err = form.querySelector(".answer-error");
        const a = {};
        if (kind === "category" || kind === "percist") {
          a.category = form.querySelector(".a-category").value;
        } else if (kind === "deauville" || kind === "krenning") {
          const g = form.querySelector(".a-grade:checked");
          a.grade = g ? Number(g.value) : null;
        } else if (kind === "choice") {
          a.choice = Array.from(form.querySelectorAll(".a-choice:checked")).map(function (x) { return x.value; });
        } else if (kind === "measurement") {
          const v = parseFloat(form.querySelector(".a-length").value);
          a.length_mm = isNaN(v) ? null : v;
        } else if (kind === "free_text") {
          a.text = form.querySelector(".a-text").value;
        } else if (kind === "click") {
          a.clicks = card.querySelector(".tviewer").points;
        }
        const button = form.querySelector("button");
        button.disabled = true;
        fetch("/api/teaching/quiz/" + quiz + "/answer", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ question_pk: Number(card.dataset.question), answer: a })
        }).then(function (r) {
          return r.json().then(function (j) { return { ok: r.ok, j: j }; });
        }).then(function (res) {
          if (!res.ok) {
            err.textContent = res.j.detail || "the answer was refused";
            err.hidden = false;
            button.disabled = false;
            return;
          }
          form.remove();
          card.dataset.answered = "true";
          renderFeedback(card, res.j);
          const count = document.getElementById("answered");
          if (count) count.textContent = String(document.querySelectorAll(".q-card[data-answered=true]").length);
        });
      });
    });
  }

  // ------------------------------------------------------------ exam countdown
  const countdown = document.getElementById("countdown");
  if (countdown) {
    const end = Date.parse(countdown.dataset.deadline);
    const tick = function () {
      const s = Math.max(0, Math.round((end - Date.now()) / 1000));
      countdown.textContent = Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
      if (s === 0) {
        countdown.textContent = "time is up (later answers score 0)";
        countdown.classList.add("late");
        return;
      }
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  // ------------------------------------------------------------ record: trainee picker
  const pick = document.getElementById("trainee-select");
  if (pick) {
    const go = document.getElementById("trainee-go");
    const update = function () { go.href = "/teaching/record/" + encodeURIComponent(pick.value); };
    pick.addEventListener("change", update);
    update();
  }
})();
