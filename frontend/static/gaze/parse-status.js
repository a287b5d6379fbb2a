// Recordings being parsed (queued or parsing after an upload or a re-parse) show their progress
// without a reload: each `.parse-watch[data-recording]` row polls
// /api/v1/recordings/{id}/status/ until its parse ends, then #parse-done offers a reload for
// the new readings.

const POLL_MS = 1000;
const LABELS = { queued: "Queued", parsing: "Parsing", done: "Done", failed: "Failed" };
const rows = Array.from(document.querySelectorAll(".parse-watch[data-recording]"));
let running = rows.length;

function show(row, status) {
  row.dataset.status = status.status;
  const state = row.querySelector(".status");
  if (state) {
    state.className = `status status-${status.status}`;
    state.textContent = status.status === "parsing"
      ? `${LABELS.parsing} ${status.progress}%`
      : LABELS[status.status] || status.status;
    if (status.status === "failed" && status.errors && status.errors.length) {
      state.textContent += `: ${status.errors.join("; ")}`;
    }
  }
  const bar = row.querySelector("progress");
  if (bar) bar.value = status.status === "done" ? 100 : status.progress;
}

function finished() {
  running -= 1;
  if (running === 0) {
    const done = document.getElementById("parse-done");
    if (done) done.hidden = false;
  }
}

async function poll(row) {
  let status;
  try {
    const response = await fetch(`/api/v1/recordings/${row.dataset.recording}/status/`, {
      headers: { Accept: "application/json" }, credentials: "same-origin",
    });
    if (response.status === 404) { finished(); return; }  // deleted meanwhile
    if (!response.ok) throw new Error(String(response.status));
    status = await response.json();
  } catch {
    window.setTimeout(() => poll(row), 5 * POLL_MS);
    return;
  }
  show(row, status);
  if (status.status === "done" || status.status === "failed") {
    row.classList.remove("parse-watch");
    finished();
    return;
  }
  window.setTimeout(() => poll(row), POLL_MS);
}

for (const row of rows) window.setTimeout(() => poll(row), POLL_MS / 2);
