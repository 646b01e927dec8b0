// oncohybrid advanced viewer: MR diffusion layers (b-images, ADC) with their own windows,
// disc ROIs with ADC statistics, ultrasound cine with the ROI's time-intensity curve, DECT
// iodine overlay. Plain JavaScript, no inline handlers (CSP).
(function () {
  "use strict";
  const root = document.getElementById("adv-viewer");
  if (!root) return;
  const api = "/api/advanced/" + encodeURIComponent(root.dataset.study);
  const q = (sel) => document.querySelector(sel);
  const state = {
    info: null, series: null, layer: null, index: 0, windows: {}, tool: "probe",
    overlay: true, playing: null, drag: null,
  };
  const img = q("#adv-img");
  const frame = q("#adv-frame");
  const shape = q("#adv-roi-shape");
  const slider = q("#adv-slider");

  function fmt(v, nd) {
    if (v === null || v === undefined) return "–";
    return Number(v).toFixed(nd === undefined ? 1 : nd);
  }

  function seriesApi() { return api + "/series/" + encodeURIComponent(state.series.series_uid); }

  function isCine() { return state.series && state.series.kind === "ceus"; }

  function count() {
    if (!state.series) return 0;
    if (isCine()) return state.series.cine.frames;
    const l = state.series.layers.find((x) => x.name === state.layer);
    return l ? l.slices : 0;
  }

  function imageUrl() {
    if (isCine()) return seriesApi() + "/frame/" + state.index + ".png";
    const w = state.windows[state.layer];
    const p = new URLSearchParams({ wc: String(w.centre), ww: String(w.width),
      overlay: state.overlay ? "true" : "false" });
    return seriesApi() + "/layer/" + encodeURIComponent(state.layer) + "/" + state.index + ".png?" + p;
  }

  function render() {
    if (!state.series) return;
    const url = imageUrl();
    img.dataset.loaded = "false";
    img.src = url;
    const n = count();
    slider.max = String(Math.max(0, n - 1));
    slider.value = String(state.index);
    let label = isCine() ? "Frame " : "Slice ";
    let extra = "";
    if (isCine()) extra = " · t = " + fmt(state.series.cine.times_s[state.index], 2) + " s";
    q("#adv-index").textContent = label + (state.index + 1) + " / " + n + extra;
    const layer = state.series.layers.find((x) => x.name === state.layer);
    q("#adv-layer-name").textContent = isCine() ? "Ultrasound cine" : (layer ? layer.label : "–");
  }

  // fit the image to the port, keeping the physical aspect (mm) of the slice
  function fit() {
    if (!state.series) return;
    let w, h;
    if (isCine()) { w = state.series.cine.columns; h = state.series.cine.rows; } else {
      const layer = state.series.layers.find((x) => x.name === state.layer);
      if (!layer) return;
      w = layer.width_mm; h = layer.height_mm;
    }
    const fw = frame.clientWidth - 8, fh = frame.clientHeight - 8;
    const s = Math.max(0.1, Math.min(fw / w, fh / h));
    img.style.width = Math.floor(w * s) + "px";
    img.style.height = Math.floor(h * s) + "px";
  }
  window.addEventListener("resize", fit);
  img.addEventListener("load", () => { fit(); img.dataset.loaded = "true"; });

  function showWindow() {
    const w = state.windows[state.layer];
    const group = q("#adv-window-group");
    group.hidden = isCine();
    if (!w) return;
    q("#adv-wc").value = String(w.centre);
    q("#adv-ww").value = String(w.width);
    const layer = state.series.layers.find((x) => x.name === state.layer);
    q("#adv-units").textContent = layer ? layer.units : "";
  }

  function chooseLayer(name) {
    state.layer = name;
    document.querySelectorAll(".adv-layer").forEach((b) => b.classList.toggle("active", b.dataset.layer === name));
    showWindow();
    render();
  }

  function chooseSeries(uid) {
    stop();
    state.series = state.info.series.find((s) => s.series_uid === uid);
    const box = q("#adv-layers");
    box.textContent = "";
    state.series.layers.forEach((l) => {
      const key = state.series.series_uid + "|" + l.name;
      if (!state.windows[key]) state.windows[key] = { centre: l.window.centre, width: l.window.width, initial: l.window };
      const b = document.createElement("button");
      b.type = "button";
      b.className = "tool adv-layer";
      b.dataset.layer = l.name;
      b.textContent = l.name === "adc" ? "ADC map" : l.name === "image" ? (state.series.kind === "mr" ? "MR" : "CT") : l.label;
      b.addEventListener("click", () => chooseLayer(l.name));
      box.appendChild(b);
    });
    // windows are kept per series and layer
    const windows = {};
    state.series.layers.forEach((l) => { windows[l.name] = state.windows[state.series.series_uid + "|" + l.name]; });
    state.windows = Object.assign(state.windows, windows);
    q("#adv-play").hidden = !isCine();
    q("#adv-tic").hidden = true;
    q("#adv-roi-result").hidden = true;
    q("#adv-overlay-label").hidden = !state.series.overlay;
    shape.hidden = true;
    if (isCine()) { state.index = 0; state.layer = null; render(); showWindow(); return; }
    const adc = state.series.layers.find((x) => x.name === "adc");
    state.layer = (adc || state.series.layers[state.series.layers.length - 1]).name;
    state.index = Math.floor(count() / 2);
    chooseLayer(state.layer);
  }

  function setWindow() {
    const c = parseFloat(q("#adv-wc").value);
    const w = parseFloat(q("#adv-ww").value);
    if (!isFinite(c) || !isFinite(w) || w <= 0) return;
    state.windows[state.layer].centre = c;
    state.windows[state.layer].width = w;
    render();
  }
  q("#adv-wc").addEventListener("change", setWindow);
  q("#adv-ww").addEventListener("change", setWindow);
  q("#adv-window-reset").addEventListener("click", () => {
    const w = state.windows[state.layer];
    w.centre = w.initial.centre; w.width = w.initial.width;
    showWindow(); render();
  });
  q("#adv-overlay").addEventListener("change", (e) => { state.overlay = e.target.checked; render(); });
  slider.addEventListener("input", () => { state.index = parseInt(slider.value, 10); render(); });
  frame.addEventListener("wheel", (e) => {
    e.preventDefault();
    const n = count();
    state.index = Math.min(n - 1, Math.max(0, state.index + (e.deltaY > 0 ? 1 : -1)));
    render();
  }, { passive: false });
  document.querySelectorAll(".adv-tool").forEach((b) => b.addEventListener("click", () => {
    state.tool = b.dataset.tool;
    document.querySelectorAll(".adv-tool").forEach((x) => x.classList.toggle("active", x === b));
  }));

  // cine playback at the acquired frame times
  function stop() {
    if (state.playing) { clearTimeout(state.playing); state.playing = null; }
    q("#adv-play").textContent = "▶ Play";
  }
  function step() {
    const t = state.series.cine.times_s;
    const next = (state.index + 1) % t.length;
    const dt = next > state.index ? Math.max(20, (t[next] - t[state.index]) * 1000) : 40;
    state.index = next;
    render();
    state.playing = setTimeout(step, dt);
  }
  q("#adv-play").addEventListener("click", () => {
    if (state.playing) { stop(); return; }
    q("#adv-play").textContent = "❚❚ Pause";
    step();
  });

  function frac(e) {
    const r = img.getBoundingClientRect();
    return { fx: Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)),
             fy: Math.min(1, Math.max(0, (e.clientY - r.top) / r.height)), r: r };
  }

  function pixelSizeMm() {
    const layer = state.series.layers.find((x) => x.name === state.layer);
    const r = img.getBoundingClientRect();
    return layer.width_mm / r.width;
  }

  function placeShape(a, b) {
    const fr = frame.getBoundingClientRect();
    const r = a.r;
    const x0 = r.left - fr.left, y0 = r.top - fr.top;
    if (isCine()) {
      const left = Math.min(a.fx, b.fx) * r.width, top = Math.min(a.fy, b.fy) * r.height;
      shape.className = "adv-roi";
      shape.style.left = (x0 + left) + "px";
      shape.style.top = (y0 + top) + "px";
      shape.style.width = Math.abs(b.fx - a.fx) * r.width + "px";
      shape.style.height = Math.abs(b.fy - a.fy) * r.height + "px";
    } else {
      const rad = Math.hypot((b.fx - a.fx) * r.width, (b.fy - a.fy) * r.height);
      shape.className = "adv-roi disc";
      shape.style.left = (x0 + a.fx * r.width - rad) + "px";
      shape.style.top = (y0 + a.fy * r.height - rad) + "px";
      shape.style.width = shape.style.height = (2 * rad) + "px";
    }
    shape.hidden = false;
  }

  frame.addEventListener("mousedown", (e) => {
    if (!state.series || e.button !== 0) return;
    e.preventDefault();
    const p = frac(e);
    if (state.tool === "roi") { state.drag = p; placeShape(p, p); return; }
    if (isCine()) return;
    const params = new URLSearchParams({ layer: state.layer, index: String(state.index),
      fx: String(p.fx), fy: String(p.fy) });
    fetch(seriesApi() + "/probe?" + params).then((r) => r.json()).then((d) => {
      const v = d.values || {};
      const main = v[state.layer];
      const layer = state.series.layers.find((x) => x.name === state.layer);
      let text = fmt(main, 1) + " " + (layer ? layer.units : "");
      if (v.iodine !== undefined) text += " · iodine " + fmt(v.iodine, 2) + " mg/mL";
      q("#adv-ro-value").textContent = text;
      q("#adv-ro-voxel").textContent = (d.voxel || []).join(", ");
      q("#adv-ro-lps").textContent = (d.lps_mm || []).map((x) => fmt(x, 1)).join(", ");
    });
  });
  window.addEventListener("mousemove", (e) => {
    if (!state.drag) return;
    placeShape(state.drag, frac(e));
  });
  window.addEventListener("mouseup", (e) => {
    if (!state.drag) return;
    const a = state.drag;
    const b = frac(e);
    state.drag = null;
    if (isCine()) { tic(a, b); return; }
    const radius = Math.hypot((b.fx - a.fx) * a.r.width, (b.fy - a.fy) * a.r.height) * pixelSizeMm();
    if (radius <= 0) return;
    state.lastRoi = { series: state.series.series_uid, kind: "roi", layer: state.layer, index: state.index, fx: a.fx, fy: a.fy,
      radius_mm: Math.max(radius, 0.5) };
    const params = new URLSearchParams({ layer: state.layer, index: String(state.index),
      fx: String(a.fx), fy: String(a.fy), radius_mm: String(Math.max(radius, 0.5)) });
    fetch(seriesApi() + "/roi?" + params).then((r) => r.json()).then(showRoi);
  });

  function row(dl, term, value, id) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (id) dd.id = id;
    dl.appendChild(dt); dl.appendChild(dd);
  }

  function showRoi(d) {
    q("#adv-roi-saved").hidden = true;
    const dl = q("#adv-roi-values");
    dl.textContent = "";
    q("#adv-roi-result").hidden = false;
    if (d.detail) { row(dl, "Error", String(d.detail)); return; }
    row(dl, "Radius", fmt(d.radius_mm, 1) + " mm");
    row(dl, "Voxels", String(d.n_voxels), "roi-n");
    if (d.adc) {
      row(dl, "ADC mean", fmt(d.adc.adc_mean_um2_s, 0) + " µm²/s", "roi-adc-mean");
      row(dl, "ADC median", fmt(d.adc.adc_median_um2_s, 0) + " µm²/s", "roi-adc-median");
      row(dl, "ADC SD", fmt(d.adc.adc_sd_um2_s, 0) + " µm²/s");
      row(dl, "ADC p10–p90", fmt(d.adc.adc_p10_um2_s, 0) + "–" + fmt(d.adc.adc_p90_um2_s, 0) + " µm²/s");
      row(dl, "Fitted voxels", String(d.adc.n_voxels));
    }
    Object.entries(d.means || {}).forEach(([k, v]) => {
      if (k !== "adc") row(dl, "Mean " + k, fmt(v, 1), "roi-mean-" + k);
    });
  }

  function tic(a, b) {
    const c = state.series.cine;
    const x = Math.round(Math.min(a.fx, b.fx) * c.columns), y = Math.round(Math.min(a.fy, b.fy) * c.rows);
    const w = Math.max(1, Math.round(Math.abs(b.fx - a.fx) * c.columns));
    const h = Math.max(1, Math.round(Math.abs(b.fy - a.fy) * c.rows));
    state.lastTic = { series: state.series.series_uid, kind: "tic", x: x, y: y, w: w, h: h, model: q("#adv-tic-model").value };
    const params = new URLSearchParams({ x: String(x), y: String(y), w: String(w), h: String(h),
      model: q("#adv-tic-model").value });
    fetch(seriesApi() + "/tic?" + params).then((r) => r.json()).then(showTic);
  }

  function showTic(d) {
    q("#adv-tic").hidden = false;
    q("#adv-tic-saved").hidden = true;
    const dl = q("#adv-tic-values");
    dl.textContent = "";
    if (d.detail) { row(dl, "Error", String(d.detail)); return; }
    row(dl, "Model", d.model, "tic-model");
    row(dl, "R²", fmt(d.r2, 4), "tic-r2");
    Object.entries(d.parameters || {}).forEach(([k, v]) => row(dl, k, fmt(v, 3), "tic-" + k));
    const cv = q("#adv-tic-chart");
    const g = cv.getContext("2d");
    const t = d.curve.t_s, y = d.curve.echo_power, f = d.curve.fitted;
    const tmax = Math.max.apply(null, t), ymax = Math.max(Math.max.apply(null, y), Math.max.apply(null, f)) || 1;
    const X = (v) => 30 + (v / tmax) * (cv.width - 40), Y = (v) => cv.height - 20 - (v / ymax) * (cv.height - 30);
    g.clearRect(0, 0, cv.width, cv.height);
    g.strokeStyle = "#888"; g.beginPath(); g.moveTo(30, 10); g.lineTo(30, cv.height - 20); g.lineTo(cv.width - 10, cv.height - 20); g.stroke();
    g.fillStyle = "#62a0ea";
    t.forEach((tv, i) => g.fillRect(X(tv) - 1, Y(y[i]) - 1, 2, 2));
    g.strokeStyle = "#f6d32d"; g.lineWidth = 2; g.beginPath();
    t.forEach((tv, i) => (i ? g.lineTo(X(tv), Y(f[i])) : g.moveTo(X(tv), Y(f[i]))));
    g.stroke();
    g.fillStyle = "#ccc"; g.fillText("t (s) → " + fmt(tmax, 0), cv.width - 90, cv.height - 5);
    g.fillText("echo power", 34, 12);
    cv.dataset.points = String(t.length);
  }

  // save the last ROI / TIC for the report (the server recomputes the numbers)
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  function save(body, done) {
    if (!body) return;
    fetch(api + "/series/" + encodeURIComponent(body.series) + "/measurements", {
      method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }).then((r) => { if (r.ok) q(done).hidden = false; });
  }
  const roiSave = q("#adv-roi-save"), ticSave = q("#adv-tic-save");
  if (roiSave) roiSave.addEventListener("click", () => save(state.lastRoi, "#adv-roi-saved"));
  if (ticSave) ticSave.addEventListener("click", () => save(state.lastTic, "#adv-tic-saved"));

  fetch(api + "/info").then((r) => r.json()).then((info) => {
    state.info = info;
    const sel = q("#adv-series");
    (info.series || []).forEach((s) => {
      const o = document.createElement("option");
      o.value = s.series_uid;
      const kind = { dwi: "DWI", mr: "MR", ceus: "CEUS cine", dect: "DECT + iodine", ct: "CT" }[s.kind] || s.kind;
      o.textContent = kind + (s.description ? " · " + s.description : "");
      sel.appendChild(o);
    });
    sel.addEventListener("change", () => chooseSeries(sel.value));
    const first = (info.series || []).find((s) => s.kind === "dwi") || (info.series || [])[0];
    if (first) { sel.value = first.series_uid; chooseSeries(first.series_uid); }
    root.dataset.ready = "true";
  });
})();
