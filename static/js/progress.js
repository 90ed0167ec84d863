// Live progress of a precompute job: polls the REST endpoint named in data-progress-url.
(function () {
  "use strict";
  const root = document.querySelector("[data-progress-url]");
  if (!root) return;
  const url = root.dataset.progressUrl;
  function render(p) {
    const finished = p.done + p.failed + p.cancelled;
    root.querySelector("[data-field=status]").textContent = p.status;
    root.querySelector("[data-field=summary]").textContent =
      `${p.done} done · ${p.failed} failed · ${p.running} running · ${p.pending} pending · ${p.cancelled} cancelled (of ${p.total})`;
    const bar = root.querySelector("progress");
    bar.max = p.total; bar.value = finished;
    const body = root.querySelector("tbody");
    body.replaceChildren(...Object.entries(p.per_config).map(([key, c]) => {
      const row = document.createElement("tr");
      for (const value of [key, c.done, c.failed, c.running, c.pending, c.total]) {
        const cell = document.createElement("td"); cell.textContent = value; row.appendChild(cell);
      }
      return row;
    }));
    const failures = root.querySelector("[data-field=failures]");
    failures.replaceChildren(...p.failures.map((f) => {
      const li = document.createElement("li"); li.textContent = `case ${f.case} · ${f.config}: ${f.error}`; return li;
    }));
    if (p.status === "running") setTimeout(poll, 1000);
    else { const form = document.querySelector("[data-cancel]"); if (form) form.hidden = true; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then(render)
      .catch(() => setTimeout(poll, 5000));
  }
  poll();
})();
