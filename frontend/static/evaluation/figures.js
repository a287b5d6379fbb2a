// Shared by the evaluation pages (a classic script, loaded after Plotly and before the page's
// module): draw a figure that can be saved as PNG (the modebar's camera, or the button under it)
// or SVG (a modebar button and a button under it), and read the page's embedded JSON.
(function () {
  const Plotly = window.Plotly;

  function data(id) {
    const node = document.getElementById(id || "figures-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function save(box, format) {
    const filename = box.dataset.filename || box.id || "figure";
    return Plotly.downloadImage(box, {
      format,
      filename,
      width: box.clientWidth || 700,
      height: box.clientHeight || 400,
      scale: format === "png" ? 2 : 1,
    });
  }

  function tools(box) {
    if (box.nextElementSibling && box.nextElementSibling.classList.contains("figure-tools")) return;
    const bar = document.createElement("div");
    bar.className = "figure-tools";
    for (const format of ["png", "svg"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button small secondary";
      button.dataset.format = format;
      button.textContent = `Save ${format.toUpperCase()}`;
      button.setAttribute("aria-label", `Save “${box.dataset.title || box.id}” as ${format.toUpperCase()}`);
      button.addEventListener("click", () => save(box, format));
      bar.append(button);
    }
    box.after(bar);
  }

  // Draw (or redraw) a figure in ``box``; ``layout`` gets the pages' defaults.
  function plot(box, traces, layout) {
    const filename = box.dataset.filename || box.id || "figure";
    const config = {
      displaylogo: false,
      responsive: true,
      toImageButtonOptions: { format: "png", filename, scale: 2 },
      modeBarButtonsToAdd: [
        {
          name: "Download plot as SVG",
          icon: Plotly.Icons.disk,
          click: (gd) => save(gd, "svg"),
        },
      ],
    };
    const full = {
      margin: { l: 55, r: 15, t: 40, b: 45 },
      height: 300,
      font: { size: 12 },
      ...layout,
    };
    const drawn = box.classList.contains("js-plotly-plot")
      ? Plotly.react(box, traces, full, config)
      : Plotly.newPlot(box, traces, full, config);
    tools(box);
    return drawn;
  }

  const fmt = (v, digits = 3) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));

  window.evaluationFigures = { data, plot, save, fmt };
})();
