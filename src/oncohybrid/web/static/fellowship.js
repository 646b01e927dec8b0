// Live eligibility on the application form (issue #13): the form is posted to
// /fellowship/apply/check (nothing is saved) and each rule's reason is shown.
(function () {
  "use strict";
  const form = document.getElementById("apply-form");
  const box = document.getElementById("eligibility");
  if (!form || !box || form.hasAttribute("inert")) return;
  const token = document.querySelector('meta[name="csrf-token"]');
  let timer = null;

  function render(result) {
    box.textContent = "";
    if (result.error) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "Incomplete: " + result.error;
      box.appendChild(p);
      return;
    }
    const verdict = document.createElement("p");
    verdict.className = "fs-verdict " + (result.eligible ? "ok" : "fail");
    verdict.textContent = result.eligible ? "Eligible" : "Not eligible";
    box.appendChild(verdict);
    const ul = document.createElement("ul");
    ul.className = "fs-rules";
    for (const r of result.rules) {
      const li = document.createElement("li");
      li.className = r.ok ? "ok" : "fail";
      li.dataset.rule = r.rule;
      const b = document.createElement("strong");
      b.textContent = r.rule;
      li.appendChild(b);
      li.appendChild(document.createTextNode(": " + r.reason));
      ul.appendChild(li);
    }
    box.appendChild(ul);
  }

  async function check() {
    const body = new FormData(form);
    try {
      const resp = await fetch("/fellowship/apply/check", {
        method: "POST", body: body, credentials: "same-origin",
        headers: token ? { "X-CSRF-Token": token.content } : {},
      });
      if (resp.ok) render(await resp.json());
    } catch (e) {
      // Offline or signed out: the saved verdict stays on the page.
    }
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  });
  form.addEventListener("change", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 100);
  });
})();
