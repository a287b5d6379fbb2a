// Draw a job's or model's training curves (Plotly, served locally) from the JSON the page embeds:
// {"epoch": [...], "train_loss": [...], ...}; each .training-curves box names its series.

const source = document.getElementById("curves-data");

if (source && window.Plotly) {
  const curves = JSON.parse(source.textContent);
  for (const box of document.querySelectorAll(".training-curves")) {
    const traces = box.dataset.series
      .split(",")
      .filter((name) => (curves[name] || []).some((v) => v !== null))
      .map((name) => ({ type: "scatter", mode: "lines+markers", name, x: curves.epoch, y: curves[name] }));
    if (!traces.length) continue;
    const layout = {
      title: { text: box.dataset.title, font: { size: 14 } },
      height: 280,
      margin: { l: 50, r: 10, t: 40, b: 40 },
      // Whole epochs only: a tick every epoch up to ten, then every tenth of the run.
      xaxis: { title: { text: "epoch" }, tick0: 1, dtick: Math.max(1, Math.ceil((curves.epoch || []).length / 10)) },
      yaxis: { type: box.dataset.log ? "log" : "linear" },
    };
    window.Plotly.newPlot(box, traces, layout, { displaylogo: false, responsive: true });
  }
}
