// While a snapshot builds, poll its status URL, show the progress, and reload when it ends.

const box = document.getElementById("snapshot-status");

async function poll() {
  const response = await fetch(box.dataset.statusUrl, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const status = await response.json();
  const bar = document.getElementById("snapshot-progress");
  if (bar) bar.value = status.progress;
  const state = document.getElementById("snapshot-state");
  if (state) state.textContent = status.status === "building" ? `Building ${status.progress}%` : status.status;
  if (status.status === "ready" || status.status === "failed") {
    window.location.reload();
    return;
  }
  window.setTimeout(poll, 1500);
}

if (box && !["ready", "failed"].includes(box.dataset.status)) {
  window.setTimeout(poll, 1000);
}
