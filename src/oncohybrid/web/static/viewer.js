// oncohybrid PET/CT viewer: server-rendered PNG planes, scroll, zoom, click read-out, MIP.
// Plain JavaScript, no dependencies; no inline handlers (the page's CSP forbids them).
(function () {
  "use strict";
  const root = document.getElementById("viewer");
  if (!root) return;
  const study = root.dataset.study;
  const api = "/api/studies/" + encodeURIComponent(study);
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const state = {
    mode: "fused", window: "soft", cmap: "hot", suvMax: 8, contours: true, zoom: 1,
    index: { axial: 0, coronal: 0, sagittal: 0 }, info: null, mipAngle: 0, playing: null,
  };
  const ports = ["axial", "coronal", "sagittal"];
  const q = (sel, el) => (el || document).querySelector(sel);

  function setActive(selector, attr, value) {
    document.querySelectorAll(selector).forEach((b) => b.classList.toggle("active", b.dataset[attr] === value));
  }

  function planeUrl(o) {
    const p = new URLSearchParams({
      mode: state.mode, window: state.window, cmap: state.cmap,
      suv_max: String(state.suvMax), contours: state.contours ? "true" : "false",
    });
    return api + "/slice/" + o + "/" + state.index[o] + ".png?" + p.toString();
  }

  function render(o) {
    const vp = q("#vp-" + o);
    const img = q(".vp-img", vp);
    const url = planeUrl(o);
    if (img.dataset.url === url) { updateTags(o); return; }
    img.dataset.url = url;
    img.dataset.loaded = "false";
    img.src = url;
    q(".vp-index", vp).textContent = (state.index[o] + 1) + " / " + state.info.planes[o].count;
    updateTags(o);
  }

  function renderAll() { ports.forEach(render); renderMip(); }

  // Lesion ids beside their contours, positioned over the plane image.
  function updateTags(o) {
    const vp = q("#vp-" + o);
    const frame = q(".vp-frame", vp);
    frame.querySelectorAll(".tag").forEach((t) => t.remove());
    if (!state.info || !state.contours) return;
    const [nk, nj, ni] = state.info.shape;
    const img = q(".vp-img", vp);
    const r = img.getBoundingClientRect();
    const fr = frame.getBoundingClientRect();
    const idx = state.index[o];
    (state.info.lesions || []).forEach((l) => {
      const b = l.bbox;
      if (!b) return;
      let fx, fy;
      if (o === "axial") {
        if (idx < b[0][0] || idx > b[0][1]) return;
        fx = (b[2][1] + 1) / ni; fy = b[1][0] / nj;
      } else if (o === "coronal") {
        if (idx < b[1][0] || idx > b[1][1]) return;
        fx = (b[2][1] + 1) / ni; fy = (nk - 1 - b[0][1]) / nk;
      } else {
        if (idx < b[2][0] || idx > b[2][1]) return;
        fx = (b[1][1] + 1) / nj; fy = (nk - 1 - b[0][1]) / nk;
      }
      const t = document.createElement("span");
      t.className = "tag";
      t.textContent = l.lesion_id;
      if (l.colour) t.style.color = l.colour;
      t.style.left = (r.left - fr.left + fx * r.width + 3) + "px";
      t.style.top = (r.top - fr.top + fy * r.height - 4) + "px";
      frame.appendChild(t);
    });
  }

  function renderMip() {
    if (!state.info || !state.info.mip_angles) return;
    const img = q("#mip-img");
    const p = new URLSearchParams({ cmap: "grey_inv", suv_max: String(state.suvMax) });
    const url = api + "/mip/" + state.mipAngle + ".png?" + p.toString();
    if (img.dataset.url !== url) { img.dataset.url = url; img.src = url; }
    q("#mip-angle").textContent = Math.round(state.mipAngle * 360 / state.info.mip_angles) + "°";
    q("#mip-slider").value = String(state.mipAngle);
  }

  function fit(img, frame, widthMm, heightMm) {
    const fr = frame.getBoundingClientRect();
    if (!fr.width || !fr.height) return;
    const aspect = widthMm / heightMm;
    let w = fr.width, h = fr.width / aspect;
    if (h > fr.height) { h = fr.height; w = h * aspect; }
    img.style.width = Math.floor(w) + "px";
    img.style.height = Math.floor(h) + "px";
  }

  function layout() {
    if (!state.info) return;
    ports.forEach((o) => {
      const vp = q("#vp-" + o);
      const pl = state.info.planes[o];
      fit(q(".vp-img", vp), q(".vp-frame", vp), pl.width_mm, pl.height_mm);
    });
    if (state.info.mip) fit(q("#mip-img"), q(".vp-frame", q("#vp-mip")), state.info.mip.width_mm, state.info.mip.height_mm);
    ports.forEach(updateTags);
  }

  function applyZoom() {
    document.querySelectorAll(".vp-img").forEach((img) => { img.style.transform = "scale(" + state.zoom + ")"; });
    ports.forEach(updateTags);
  }

  function scroll(o, delta) {
    const n = state.info.planes[o].count;
    const next = Math.max(0, Math.min(n - 1, state.index[o] + delta));
    if (next !== state.index[o]) { state.index[o] = next; render(o); }
  }

  function showMarker(o, fx, fy) {
    ports.forEach((p) => { q(".marker", q("#vp-" + p)).hidden = true; });
    const vp = q("#vp-" + o);
    const img = q(".vp-img", vp);
    const frame = q(".vp-frame", vp);
    const r = img.getBoundingClientRect();
    const fr = frame.getBoundingClientRect();
    const m = q(".marker", vp);
    m.style.left = (r.left - fr.left + fx * r.width) + "px";
    m.style.top = (r.top - fr.top + fy * r.height) + "px";
    m.hidden = false;
  }

  async function probe(o, ev) {
    const img = ev.currentTarget;
    const r = img.getBoundingClientRect();
    const fx = (ev.clientX - r.left) / r.width;
    const fy = (ev.clientY - r.top) / r.height;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    const p = new URLSearchParams({ orientation: o, index: String(state.index[o]), fx: fx.toFixed(5), fy: fy.toFixed(5) });
    const resp = await fetch(api + "/probe?" + p.toString(), { credentials: "same-origin" });
    if (!resp.ok) return;
    const d = await resp.json();
    const ro = q("#readout");
    ro.dataset.hu = d.hu === null ? "" : String(d.hu);
    ro.dataset.suv = d.suv === null ? "" : String(d.suv);
    ro.dataset.lps = d.lps_mm.join(",");
    ro.dataset.voxel = d.voxel.join(",");
    q("#ro-hu").textContent = d.hu === null ? "–" : d.hu.toFixed(0) + " HU";
    q("#ro-suv").textContent = d.suv === null ? "–" : "SUVbw " + d.suv.toFixed(2);
    q("#ro-voxel").textContent = d.voxel.join(", ");
    q("#ro-lps").textContent = d.lps_mm.map((v) => v.toFixed(1)).join(", ");
    ro.dataset.ready = "true";
    const [k, j, i] = d.voxel;
    if (o !== "axial") state.index.axial = k;
    if (o !== "coronal") state.index.coronal = j;
    if (o !== "sagittal") state.index.sagittal = i;
    ports.filter((p) => p !== o).forEach(render);
    showMarker(o, fx, fy);
  }

  function setupPorts() {
    ports.forEach((o) => {
      const vp = q("#vp-" + o);
      const img = q(".vp-img", vp);
      img.addEventListener("load", () => { img.dataset.loaded = "true"; });
      vp.addEventListener("wheel", (ev) => {
        ev.preventDefault();
        if (ev.ctrlKey) {
          state.zoom = Math.max(1, Math.min(6, state.zoom * (ev.deltaY < 0 ? 1.15 : 1 / 1.15)));
          applyZoom();
        } else {
          scroll(o, ev.deltaY > 0 ? -1 : 1);
        }
      }, { passive: false });
      vp.addEventListener("keydown", (ev) => {
        if (ev.key === "ArrowUp" || ev.key === "PageUp") { scroll(o, 1); ev.preventDefault(); }
        if (ev.key === "ArrowDown" || ev.key === "PageDown") { scroll(o, -1); ev.preventDefault(); }
      });
      img.addEventListener("click", (ev) => {
        vp.focus();
        if (state.measure) measureClick(o, ev); else probe(o, ev);
      });
    });
    if (state.info.mip) {
      q("#mip-slider").max = String(state.info.mip_angles - 1);
    } else {
      q("#vp-mip").hidden = true;
    }
  }

  function setupTools() {
    document.querySelectorAll("button.mode").forEach((b) => b.addEventListener("click", () => {
      state.mode = b.dataset.mode; setActive("button.mode", "mode", state.mode); renderAll();
    }));
    document.querySelectorAll("button.win").forEach((b) => b.addEventListener("click", () => {
      state.window = b.dataset.window; setActive("button.win", "window", state.window); renderAll();
    }));
    q("#cmap").addEventListener("change", (ev) => { state.cmap = ev.target.value; renderAll(); });
    q("#suvmax").addEventListener("change", (ev) => {
      const v = parseFloat(ev.target.value);
      if (v > 0) { state.suvMax = v; renderAll(); }
    });
    q("#contours").addEventListener("change", (ev) => { state.contours = ev.target.checked; renderAll(); });
    q("#zoom-in").addEventListener("click", () => { state.zoom = Math.min(6, state.zoom * 1.25); applyZoom(); });
    q("#zoom-out").addEventListener("click", () => { state.zoom = Math.max(1, state.zoom / 1.25); applyZoom(); });
    q("#zoom-reset").addEventListener("click", () => { state.zoom = 1; applyZoom(); });
    q("#mip-slider").addEventListener("input", (ev) => { state.mipAngle = parseInt(ev.target.value, 10); renderMip(); });
    q("#mip-play").addEventListener("click", (ev) => {
      if (state.playing) {
        clearInterval(state.playing); state.playing = null; ev.target.textContent = "▶ Rotate";
      } else {
        ev.target.textContent = "❚❚ Stop";
        state.playing = setInterval(() => {
          state.mipAngle = (state.mipAngle + 1) % state.info.mip_angles; renderMip();
        }, 150);
      }
    });
    q("#vp-mip").addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const n = state.info.mip_angles;
      state.mipAngle = (state.mipAngle + (ev.deltaY > 0 ? 1 : n - 1)) % n; renderMip();
    }, { passive: false });
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  async function showHistory(lesionId) {
    const box = q("#lesion-history");
    const resp = await fetch("/api/patients/" + root.dataset.patient + "/lesions/" + encodeURIComponent(lesionId), { credentials: "same-origin" });
    if (!resp.ok) { box.textContent = "No history available."; return; }
    const d = await resp.json();
    const cols = d.columns || [];
    let html = "<h2>" + esc(lesionId) + " over time</h2><table><tr>";
    cols.forEach((c) => { html += "<th>" + esc(c.label) + "</th>"; });
    html += "</tr>";
    (d.rows || []).forEach((row) => {
      html += "<tr>";
      cols.forEach((c) => { const v = row[c.key]; html += "<td>" + (v === null || v === undefined ? "–" : esc(v)) + "</td>"; });
      html += "</tr>";
    });
    box.innerHTML = html + "</table>";
    box.dataset.lesion = lesionId;
  }

  function setupLesions() {
    const list = q("#lesion-list");
    const lesions = state.info.lesions || [];
    if (!lesions.length) return;
    list.innerHTML = "";
    lesions.forEach((l) => {
      const li = document.createElement("li");
      li.dataset.lesion = l.lesion_id;
      li.textContent = l.lesion_id + (l.site ? " · " + l.site : "") + (l.role ? " · " + l.role : "");
      li.addEventListener("click", () => {
        if (l.voxel) {
          state.index.axial = l.voxel[0]; state.index.coronal = l.voxel[1]; state.index.sagittal = l.voxel[2];
          ports.forEach(render);
        }
        showHistory(l.lesion_id);
      });
      list.appendChild(li);
    });
  }

  function fractions(ev) {
    const r = ev.currentTarget.getBoundingClientRect();
    return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height];
  }

  async function measureClick(o, ev) {
    const m = state.measure;
    const [fx, fy] = fractions(ev);
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    showMarker(o, fx, fy);
    if (!m.points.length || m.orientation !== o) {
      m.orientation = o; m.index = state.index[o]; m.points = [[fx, fy]];
      q("#measure-status").textContent = "Click the second end point.";
      return;
    }
    m.points.push([fx, fy]);
    const body = {
      lesion_id: q("#measure-lesion").value, axis: q("#measure-axis").value,
      orientation: o, index: m.index, p1: m.points[0], p2: m.points[1],
    };
    state.measure = null;
    q("#measure-start").classList.remove("active");
    const resp = await fetch(api + "/measurements", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const d = await resp.json();
    const st = q("#measure-status");
    if (!resp.ok) { st.textContent = d.detail || "The measurement was refused."; return; }
    const resps = Object.entries(d.response || {}).map(([c, r]) => c + ": " + r.category).join(" · ");
    st.textContent = body.lesion_id + " " + body.axis + " axis " + d.length_mm.toFixed(1) + " mm saved. " + resps;
    st.dataset.length = String(d.length_mm);
    showHistory(body.lesion_id);
  }

  function setupMeasure() {
    const lesions = state.info.lesions || [];
    const box = q("#measure");
    if (!state.info.can_edit || !lesions.length || !box) return;
    box.hidden = false;
    const sel = q("#measure-lesion");
    lesions.forEach((l) => {
      const opt = document.createElement("option");
      opt.value = l.lesion_id; opt.textContent = l.lesion_id + (l.site ? " · " + l.site : "");
      sel.appendChild(opt);
    });
    q("#measure-start").addEventListener("click", (ev) => {
      state.measure = { points: [] };
      ev.target.classList.add("active");
      q("#measure-status").textContent = "Click the first end point on a plane.";
    });
  }

  async function init() {
    const resp = await fetch(api + "/info", { credentials: "same-origin" });
    if (!resp.ok) { root.insertAdjacentText("afterbegin", "Cannot load this study."); return; }
    state.info = await resp.json();
    if (state.info.suv_max_default) { state.suvMax = state.info.suv_max_default; q("#suvmax").value = String(state.suvMax); }
    if (!state.info.has_pet) state.mode = "ct";
    if (!state.info.has_ct) state.mode = "pet";
    const [nk, nj, ni] = state.info.shape;
    state.index = { axial: Math.floor(nk / 2), coronal: Math.floor(nj / 2), sagittal: Math.floor(ni / 2) };
    setActive("button.mode", "mode", state.mode);
    setActive("button.win", "window", state.window);
    setupPorts(); setupTools(); setupLesions(); setupMeasure();
    layout();
    window.addEventListener("resize", layout);
    root.dataset.ready = "true";
    renderAll();
  }
  init();
})();
