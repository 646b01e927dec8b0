// Lesion table: role changes and match fixes, posted as JSON with the session's CSRF header.
(function () {
  "use strict";
  const table = document.getElementById("lesion-table");
  if (!table) return;
  const patient = table.dataset.patient;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const tp = new URLSearchParams(window.location.search).get("tp");

  function showResult(d) {
    const box = document.getElementById("response");
    box.innerHTML = "";
    Object.entries(d.response || {}).forEach(([c, r]) => {
      const p = document.createElement("p");
      const s = document.createElement("strong"); s.textContent = c; p.appendChild(s);
      p.appendChild(document.createTextNode(": "));
      const span = document.createElement("span");
      span.className = "resp resp-" + String(r.category).toLowerCase();
      span.dataset.criterion = c; span.textContent = r.category; p.appendChild(span);
      box.appendChild(p);
    });
    const ol = document.getElementById("trace");
    ol.innerHTML = "";
    (d.trace || []).forEach((l) => { const li = document.createElement("li"); li.textContent = l; ol.appendChild(li); });
    document.body.dataset.updated = String(Date.now());
  }

  async function post(url, body) {
    const resp = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body),
    });
    const d = await resp.json();
    if (!resp.ok) { window.alert(d.detail || "The change was refused."); return null; }
    return d;
  }

  table.querySelectorAll("select.role-select").forEach((sel) => sel.addEventListener("change", async () => {
    const d = await post("/api/patients/" + patient + "/lesions/" + encodeURIComponent(sel.dataset.lesion) + "/role",
      { criterion: sel.dataset.criterion, role: sel.value, timepoint: tp === null ? null : parseInt(tp, 10) });
    if (d) showResult(d);
  }));
  table.querySelectorAll("select.match-select").forEach((sel) => sel.addEventListener("change", async () => {
    const d = await post("/api/patients/" + patient + "/lesions/" + encodeURIComponent(sel.dataset.lesion) + "/match",
      { match: sel.value, timepoint: tp === null ? null : parseInt(tp, 10) });
    if (d) window.location.reload();
  }));
})();
