// The upload page: drop or choose files; each goes to the API in its own request, with its own
// progress bar and result (a zip gets one result per image inside it).

const form = document.getElementById("upload-form");

if (form) {
  const dropzone = document.getElementById("dropzone");
  const input = document.getElementById("upload-files");
  const list = document.getElementById("upload-list");
  const summary = document.getElementById("upload-summary");
  const labelSelect = document.getElementById("upload-label");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxBytes = Number(form.dataset.maxBytes);
  const queue = [];
  let running = 0;
  const PARALLEL = 2;
  const totals = { created: 0, duplicate: 0, rejected: 0 };

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text) node.textContent = text;
    return node;
  };

  function updateSummary() {
    const waiting = queue.length + running;
    summary.textContent =
      `${totals.created} stored, ${totals.duplicate} already there, ${totals.rejected} rejected` +
      (waiting ? `; ${waiting} in progress.` : ".");
  }

  function showResults(row, results) {
    const out = row.querySelector(".upload-results");
    for (const result of results) {
      totals[result.status] += 1;
      const item = el("li", { class: `result result-${result.status}`, "data-status": result.status });
      if (result.image) {
        const link = el("a", { href: `/images/${result.image.id}/` });
        const img = el("img", {
          src: result.image.thumbnail_url, alt: `Thumbnail of ${result.image.key}`,
          class: "upload-thumb", width: "96", height: "96",
        });
        link.append(img);
        item.append(link);
      }
      item.append(el("span", { class: "result-message" }, result.message));
      out.append(item);
    }
  }

  function fail(row, message) {
    totals.rejected += 1;
    row.dataset.state = "rejected";
    row.querySelector(".upload-state").textContent = "Rejected";
    const out = row.querySelector(".upload-results");
    out.append(el("li", { class: "result result-rejected", "data-status": "rejected" }, message));
  }

  function upload(file, row) {
    const bar = row.querySelector("progress");
    const state = row.querySelector(".upload-state");
    const body = new FormData();
    body.append("lab", form.dataset.lab);
    body.append("files", file, file.name);
    if (labelSelect.value) body.append("label", labelSelect.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/images/");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      bar.value = Math.round((100 * event.loaded) / event.total);
      row.dataset.progressEvents = String(Number(row.dataset.progressEvents || 0) + 1);
      state.textContent = bar.value < 100 ? `Uploading ${bar.value}%` : "Processing…";
    });
    return new Promise((resolve) => {
      xhr.addEventListener("load", () => {
        bar.value = 100;
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          data = null;
        }
        if (data && Array.isArray(data.results)) {
          showResults(row, data.results);
          const statuses = data.results.map((r) => r.status);
          row.dataset.state = statuses.every((s) => s === "rejected") ? "rejected" : "done";
          state.textContent = statuses.includes("rejected")
            ? (statuses.every((s) => s === "rejected") ? "Rejected" : "Partly stored")
            : statuses.includes("created") ? "Stored" : "Already in the lab";
        } else {
          fail(row, data?.error?.message || `The server answered ${xhr.status}.`);
        }
        resolve();
      });
      xhr.addEventListener("error", () => {
        fail(row, "The upload failed: the connection was lost.");
        resolve();
      });
      xhr.send(body);
    });
  }

  function pump() {
    while (running < PARALLEL && queue.length) {
      const [file, row] = queue.shift();
      running += 1;
      upload(file, row).finally(() => {
        running -= 1;
        updateSummary();
        pump();
      });
    }
    updateSummary();
  }

  function add(files) {
    for (const file of files) {
      const row = el("li", { class: "upload-row", "data-state": "queued" });
      row.append(el("span", { class: "upload-name" }, file.name));
      const bar = el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
      row.append(bar, el("span", { class: "upload-state" }, "Waiting"));
      row.append(el("ul", { class: "upload-results" }));
      list.append(row);
      if (maxBytes && file.size > maxBytes) {
        bar.value = 0;
        fail(row, `${file.name}: is ${file.size.toLocaleString()} bytes, over the limit of ${maxBytes.toLocaleString()} bytes.`);
        continue;
      }
      queue.push([file, row]);
    }
    pump();
  }

  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    dropzone.addEventListener(name, (event) => {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  }
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) add([...event.dataTransfer.files]);
  });
}
