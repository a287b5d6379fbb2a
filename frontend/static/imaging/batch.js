// Upload batches on the library page: poll each unfinished batch's status URL, show how many
// files are done and each file's result; when the batch ends, reload the page on it so that the
// new images show in the grid.

const POLL_MS = 1000;
const FINISHED = ["done", "failed"];
const STATES = { queued: "Queued", running: "Running", done: "Done", failed: "Failed" };
const FILE_STATES = {
  queued: "Queued", running: "Ingesting…", created: "Stored", duplicate: "Already in the lab",
  rejected: "Rejected", expanded: "Zip read",
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function render(panel, data) {
  panel.dataset.status = data.status;
  const bar = panel.querySelector(".batch-progress");
  bar.max = Math.max(1, data.progress.total);
  bar.value = data.progress.done;
  const state = panel.querySelector(".batch-state");
  state.textContent = STATES[data.status] || data.status;
  state.className = `badge batch-state batch-${data.status}`;
  const n = data.progress.total;
  panel.querySelector(".batch-summary").textContent =
    `${data.progress.done} of ${n} file${n === 1 ? "" : "s"} done: ${data.created} stored, ` +
    `${data.duplicates} already in the lab, ${data.rejected} rejected.`;
  const list = panel.querySelector(".batch-files");
  const items = data.files.map((file) => {
    const item = el("li", {
      class: `batch-file result-${file.status}${file.parent ? " batch-member" : ""}`,
      "data-status": file.status, "data-file-id": String(file.id),
    });
    const name = file.image
      ? el("a", { href: `/images/${file.image.id}/`, class: "upload-name" }, file.file)
      : el("span", { class: "upload-name" }, file.file);
    item.append(name, el("span", { class: "result-message" }, file.message || FILE_STATES[file.status] || file.status));
    return item;
  });
  list.replaceChildren(...items);
}

async function follow(panel) {
  for (;;) {
    await sleep(POLL_MS);
    let data = null;
    try {
      const response = await fetch(panel.dataset.statusUrl, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (response.status === 404) return; // deleted, or the lab was switched
      if (!response.ok) continue;
      data = await response.json();
    } catch {
      continue; // the server is restarting, the network hiccupped: try again
    }
    render(panel, data);
    if (FINISHED.includes(data.status)) {
      const url = new URL(window.location.href);
      url.searchParams.set("batch", panel.dataset.batchId);
      url.searchParams.delete("page");
      window.location.replace(url.toString());
      return;
    }
  }
}

for (const panel of document.querySelectorAll(".upload-batch")) {
  if (!FINISHED.includes(panel.dataset.status)) follow(panel);
}
