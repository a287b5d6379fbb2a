// The image page: the preview on a canvas with a window (level and width over its 8-bit gray
// levels), and the label form, which PATCHes the API.

const viewer = document.getElementById("viewer");

if (viewer) {
  const canvas = document.getElementById("viewer-canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const center = document.getElementById("window-center");
  const width = document.getElementById("window-width");
  const centerOut = document.getElementById("window-center-value");
  const widthOut = document.getElementById("window-width-value");
  let original = null;

  function render() {
    if (!original) return;
    const c = Number(center.value);
    const w = Number(width.value);
    centerOut.textContent = c;
    widthOut.textContent = w;
    const lut = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v += 1) lut[v] = Math.round(((v - (c - w / 2)) / w) * 255);
    const out = new ImageData(original.width, original.height);
    const src = original.data;
    const dst = out.data;
    for (let i = 0; i < src.length; i += 4) {
      const g = lut[src[i]];
      dst[i] = g;
      dst[i + 1] = g;
      dst[i + 2] = g;
      dst[i + 3] = 255;
    }
    ctx.putImageData(out, 0, 0);
    canvas.dataset.window = `${c},${w}`;
  }

  const img = new Image();
  img.addEventListener("load", () => {
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    ctx.drawImage(img, 0, 0);
    original = ctx.getImageData(0, 0, canvas.width, canvas.height);
    canvas.dataset.loaded = "true";
    render();
  });
  img.src = viewer.dataset.preview;
  center.addEventListener("input", render);
  width.addEventListener("input", render);
  document.getElementById("window-reset").addEventListener("click", () => {
    center.value = 128;
    width.value = 256;
    render();
  });
}

const labelForm = document.getElementById("label-form");
if (labelForm) {
  const status = document.getElementById("label-status");
  labelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const csrf = labelForm.querySelector("input[name=csrfmiddlewaretoken]").value;
    const label = labelForm.querySelector("select").value;
    status.textContent = "Saving…";
    try {
      const response = await fetch(labelForm.dataset.url, {
        method: "PATCH",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ label }),
      });
      const data = await response.json();
      status.textContent = response.ok ? `Saved: ${data.label || "unlabelled"}.` : data.error.message;
    } catch {
      status.textContent = "Saving failed: the connection was lost.";
    }
  });
}
