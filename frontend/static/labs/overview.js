// The production model's headline metrics beside the centre bias and the inter-observer
// ceiling (Plotly, served locally), from the JSON the home page embeds.

const source = document.getElementById("headline-data");
const box = document.getElementById("headline-chart");

if (source && box && window.Plotly) {
  const rows = JSON.parse(source.textContent);
  const labels = rows.map((r) => r.label);
  const trace = (name, key, color) => ({
    type: "bar", name, x: labels, y: rows.map((r) => r[key]), marker: { color },
  });
  const traces = [
    trace("Centre bias", "centre_bias", "#9aa5b1"),
    trace("Model", "model", "#2f6fde"),
    trace("Inter-observer ceiling", "ceiling", "#2e9e6a"),
  ];
  const layout = {
    barmode: "group", height: 300, margin: { l: 50, r: 10, t: 30, b: 40 },
    title: { text: "Where the model stands", font: { size: 14 } },
    legend: { orientation: "h" },
  };
  const config = {
    displaylogo: false, responsive: true,
    toImageButtonOptions: { format: "png", filename: "production-model" },
    modeBarButtonsToAdd: [{
      name: "Download as SVG", icon: window.Plotly.Icons.disk,
      click: (gd) => window.Plotly.downloadImage(gd, { format: "svg", filename: "production-model" }),
    }],
  };
  window.Plotly.newPlot(box, traces, layout, config);
}
