// The session page: drop one or many exports; they upload together (so a companion file such as
// EGD-CXR's master_sheet.csv reaches its export) with a progress bar, then each recording's parse
// shows its own progress bar, polled from /api/v1/recordings/{id}/status/.

const form = document.getElementById("gaze-upload");

if (form) {
  const dropzone = document.getElementById("gaze-dropzone");
  const input = document.getElementById("gaze-files");
  const list = document.getElementById("gaze-uploads");
  const options = document.getElementById("gaze-options");
  const imageKey = document.getElementById("gaze-image-key");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const maxBytes = Number(form.dataset.maxBytes);
  const POLL_MS = 500;

  const el = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text) node.textContent = text;
    return node;
  };

  function row(label) {
    const item = el("li", { class: "gaze-row" });
    item.append(el("span", { class: "label" }, label));
    const bar = el("progress", { max: "100", value: "0" });
    const state = el("span", { class: "state", "aria-live": "polite" }, "Waiting…");
    item.append(bar, state);
    list.append(item);
    return { item, bar, state };
  }

  async function poll(recording, parts) {
    parts.item.dataset.recording = String(recording.id);
    parts.item.classList.add("parse-row");
    parts.bar.value = recording.progress;
    for (;;) {
      const response = await fetch(`/api/v1/recordings/${recording.id}/status/`, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      const status = await response.json();
      parts.bar.value = status.progress;
      parts.item.dataset.state = status.status;
      if (status.status === "done") {
        parts.state.textContent = "Parsed. ";
        parts.state.append(el("a", { href: `/recordings/${recording.id}/`, class: "result-link" }, "See the result"));
        return;
      }
      if (status.status === "failed") {
        parts.state.textContent = `Failed: ${(status.errors || []).join("; ")} `;
        parts.state.append(el("a", { href: `/recordings/${recording.id}/` }, "Details"));
        return;
      }
      parts.state.textContent = status.status === "queued" ? "Queued…" : `Parsing ${status.progress}%`;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  // The options sent with an upload: the JSON typed under "Options", with the "Image shown" field
  // as its image_key. Returns { value } (null: no options) or { error }.
  function uploadOptions() {
    const text = options ? options.value.trim() : "";
    const key = imageKey ? imageKey.value.trim() : "";
    if (!key) return { value: text || null };
    let parsed = {};
    if (text) {
      try { parsed = JSON.parse(text); } catch { return { error: "The reader options are not valid JSON." }; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        return { error: "The reader options must be a JSON object." };
      }
    }
    return { value: JSON.stringify({ ...parsed, image_key: key }) };
  }

  function upload(files) {
    const names = files.map((f) => f.name).join(", ");
    const up = row(`Uploading ${names}`);
    up.item.classList.add("upload-row");
    const tooBig = files.find((f) => f.size > maxBytes);
    if (tooBig) {
      up.state.textContent = `${tooBig.name} is larger than the limit of ${maxBytes} bytes.`;
      up.item.dataset.state = "rejected";
      return;
    }
    const sent = uploadOptions();
    if (sent.error) {
      up.state.textContent = sent.error;
      up.item.dataset.state = "rejected";
      return;
    }
    const body = new FormData();
    body.append("session", form.dataset.session);
    for (const f of files) body.append("files", f, f.name);
    if (sent.value) body.append("options", sent.value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/recordings/");
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      up.bar.value = Math.round((100 * event.loaded) / event.total);
      up.state.textContent = up.bar.value < 100 ? `Uploading ${up.bar.value}%` : "Checking…";
    });
    xhr.addEventListener("load", () => {
      up.bar.value = 100;
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status === 201 && Array.isArray(data)) {
        up.item.dataset.state = "uploaded";
        up.state.textContent = `Uploaded (${data.length} recording${data.length === 1 ? "" : "s"}).`;
        document.getElementById("no-recordings")?.remove();
        for (const recording of data) {
          const parts = row(`Parsing ${recording.original_name} (${recording.format})`);
          poll(recording, parts).catch((err) => { parts.state.textContent = `Polling failed: ${err}`; });
        }
      } else {
        up.item.dataset.state = "rejected";
        up.state.textContent = data?.error?.message || `The server answered ${xhr.status}.`;
      }
    });
    xhr.addEventListener("error", () => {
      up.item.dataset.state = "rejected";
      up.state.textContent = "The upload failed: the connection was lost.";
    });
    xhr.send(body);
  }

  input.addEventListener("change", () => {
    if (input.files.length) upload(Array.from(input.files));
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    dropzone.addEventListener(name, (event) => { event.preventDefault(); dropzone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    dropzone.addEventListener(name, () => dropzone.classList.remove("dragging"));
  }
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files.length) upload(Array.from(event.dataTransfer.files));
  });
}
