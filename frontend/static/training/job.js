// Poll each unfinished training job's status URL: state, queue position, epoch progress,
// batch and ETA. The job page reloads when an epoch finishes or the job ends.

const FINISHED = ["succeeded", "failed", "cancelled"];

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
  const set = (cls, text) => {
    const node = row.querySelector(cls);
    if (node) node.textContent = text;
  };
  const bar = row.querySelector(".job-progress");
  if (bar) {
    bar.max = status.max_epochs || 1;
    bar.value = status.epoch + (status.num_batches ? status.batch / status.num_batches : 0);
  }
  // As the server renders it: "Running", not "running".
  set(".job-state", status.status.charAt(0).toUpperCase() + status.status.slice(1));
  set(".job-position", status.queue_position ? `#${status.queue_position} in queue` : "");
  set(".job-epoch", `${status.epoch}/${status.max_epochs}`);
  set(".job-batch", `${status.batch}/${status.num_batches}`);
  if (status.eta_s !== null) set(".job-eta", String(Math.round(status.eta_s)));
  const changed = status.status !== row.dataset.status || String(status.epoch) !== row.dataset.epoch;
  if (row.dataset.reload && changed && row.dataset.epoch !== undefined) {
    window.location.reload();
    return;
  }
  row.dataset.epoch = String(status.epoch);
  row.dataset.status = status.status;
  if (!FINISHED.includes(status.status)) window.setTimeout(() => poll(row), 2000);
}

for (const row of document.querySelectorAll(".training-row")) {
  if (!FINISHED.includes(row.dataset.status)) window.setTimeout(() => poll(row), 1000);
}
