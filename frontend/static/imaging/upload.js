// The upload page: drop or choose files; they go to the API in one request (with an upload
// progress bar), which answers 202 with an upload batch at once; the library page then shows
// the batch's progress while a worker ingests the files, and each file's result.

const form = document.getElementById("upload-form");

if (form) {
  const dropzone = document.getElementById("dropzone");
  const input = document.getElementById("upload-files");
  const panel = document.getElementById("upload-request");
  const bar = document.getElementById("upload-progress");
  const list = document.getElementById("upload-list");
  const summary = document.getElementById("upload-summary");
  const labelSelect = document.getElementById("upload-label");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxBytes = Number(form.dataset.maxBytes);
  let busy = false;

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text) node.textContent = text;
    return node;
  };

  function row(name, state, message = "") {
    const item = el("li", { class: "upload-row", "data-state": state });
    item.append(el("span", { class: "upload-name" }, name));
    item.append(el("span", { class: "upload-state" }, message));
    list.append(item);
    return item;
  }

  function refuse(message) {
    summary.textContent = message;
    panel.dataset.state = "rejected";
    busy = false;
  }

  function upload(files) {
    if (busy) return;
    panel.hidden = false;
    list.replaceChildren();
    bar.value = 0;
    const body = new FormData();
    body.append("lab", form.dataset.lab);
    if (labelSelect.value) body.append("label", labelSelect.value);
    let sent = 0;
    for (const file of files) {
      if (maxBytes && file.size > maxBytes) {
        row(file.name, "rejected",
          `${file.name}: is ${file.size.toLocaleString()} bytes, over the limit of ${maxBytes.toLocaleString()} bytes.`);
        continue;
      }
      body.append("files", file, file.name);
      row(file.name, "sending", "");
      sent += 1;
    }
    if (!sent) {
      refuse("Nothing to upload: every file is over the size limit.");
      return;
    }
    busy = true;
    panel.dataset.state = "uploading";
    summary.textContent = `Uploading ${sent} file${sent === 1 ? "" : "s"}…`;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/images/");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      bar.value = Math.round((100 * event.loaded) / event.total);
      panel.dataset.progressEvents = String(Number(panel.dataset.progressEvents || 0) + 1);
      summary.textContent = bar.value < 100 ? `Uploading ${bar.value}%` : "Storing the files…";
    });
    xhr.addEventListener("load", () => {
      bar.value = 100;
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status === 202 && data && data.id) {
        panel.dataset.state = "queued";
        summary.textContent = "Uploaded; the images are being read. Opening the library…";
        window.location.assign(`/images/?batch=${data.id}`);
        return;
      }
      for (const result of data?.results || []) row(result.file, "rejected", result.message);
      refuse(data?.error?.message || `The server answered ${xhr.status}.`);
    });
    xhr.addEventListener("error", () => refuse("The upload failed: the connection was lost."));
    xhr.send(body);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.files.length) upload([...input.files]);
  });
  input.addEventListener("change", () => {
    upload([...input.files]);
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
    if (event.dataTransfer?.files?.length) upload([...event.dataTransfer.files]);
  });
}
