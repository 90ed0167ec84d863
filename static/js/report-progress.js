// Live progress of report generation: polls each unfinished row's progress URL, reloads when one finishes.
(function () {
  "use strict";
  const rows = Array.from(document.querySelectorAll("[data-report-progress]"));
  function poll(row) {
    fetch(row.dataset.reportProgress, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((p) => {
        row.querySelector("progress").value = p.progress;
        row.querySelector("[data-field=status]").textContent =
          p.status_label + (p.status === "running" && p.stage ? " – " + p.stage : "");
        if (p.status === "pending" || p.status === "running") setTimeout(() => poll(row), 1000);
        else if (!row.dataset.wasFinished) window.location.reload();
      })
      .catch(() => setTimeout(() => poll(row), 5000));
  }
  for (const row of rows) {
    const status = row.querySelector("[data-field=status]").textContent.trim();
    if (status.startsWith("done") || status.startsWith("failed")) { row.dataset.wasFinished = "1"; continue; }
    poll(row);
  }
})();
