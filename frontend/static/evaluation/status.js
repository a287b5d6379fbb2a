// Poll each unfinished evaluation's status URL: state and images scored. The evaluation page
// (data-reload) reloads when the evaluation ends, to show its results.

const FINISHED = ["succeeded", "failed"];

async function poll(row) {
  let status;
  try {
    const response = await fetch(row.dataset.statusUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    status = await response.json();
  } catch {
    window.setTimeout(() => poll(row), 5000);
    return;
  }
  const bar = row.querySelector(".evaluation-progress");
  if (bar) {
    bar.max = status.total || 1;
    bar.value = status.done;
    bar.textContent = `${status.progress}%`;
  }
  const state = row.querySelector(".evaluation-state");
  if (state) {
    state.textContent = status.status.charAt(0).toUpperCase() + status.status.slice(1);
    state.className = `status status-${status.status} evaluation-state`;
  }
  const count = row.querySelector(".evaluation-count");
  if (count) count.textContent = `${status.done}/${status.total}`;
  const changed = status.status !== row.dataset.status;
  row.dataset.status = status.status;
  if (FINISHED.includes(status.status)) {
    if (row.dataset.reload && changed) window.location.reload();
    return;
  }
  window.setTimeout(() => poll(row), 2000);
}

for (const row of document.querySelectorAll("[data-status-url]")) {
  if (!FINISHED.includes(row.dataset.status)) window.setTimeout(() => poll(row), 1000);
}
