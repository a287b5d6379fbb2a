// The evaluation page's figures (from #figures-data): each metric's per-image distribution
// (the model, the centre bias and the inter-observer ceiling), the ROC curves per class and the
// confusion matrix.

const { data, plot, fmt } = window.evaluationFigures || {};
const figures = data ? data() : null;

const SERIES = [
  ["model", "Model", "#1f5fbf"],
  ["centre_bias", "Centre bias", "#8a8f98"],
  ["ceiling", "Inter-observer ceiling", "#17663a"],
];

function distributions() {
  for (const box of document.querySelectorAll(".eval-figure[data-figure='distribution']")) {
    const metric = figures.metrics.find((m) => m.key === box.dataset.metric);
    const values = figures.distributions[box.dataset.metric] || {};
    const traces = SERIES.filter(([key]) => (values[key] || []).length).map(([key, name, color]) => ({
      type: "box",
      name,
      y: values[key],
      boxmean: true,
      boxpoints: values[key].length > 300 ? "outliers" : "all",
      jitter: 0.35,
      pointpos: 0,
      marker: { color, size: 4, opacity: 0.6 },
      line: { color },
    }));
    plot(box, traces, {
      title: { text: `${metric.label} per image (${metric.lower_is_better ? "lower" : "higher"} is better)` },
      showlegend: false,
      yaxis: { zeroline: false },
    });
  }
}

function roc() {
  const box = document.getElementById("figure-roc");
  if (!box) return;
  const traces = Object.entries(figures.roc).map(([name, curve]) => ({
    type: "scatter",
    mode: "lines",
    name: `${name} (AUC ${fmt(figures.auc[name])})`,
    x: curve.fpr,
    y: curve.tpr,
    line: { shape: "hv", width: 2 },
  }));
  traces.push({
    type: "scatter",
    mode: "lines",
    name: "chance",
    x: [0, 1],
    y: [0, 1],
    line: { dash: "dot", color: "#8a8f98", width: 1 },
    hoverinfo: "skip",
  });
  plot(box, traces, {
    title: { text: "ROC curves, one class against the rest" },
    height: 380,
    xaxis: { title: { text: "false positive rate" }, range: [0, 1], constrain: "domain" },
    yaxis: { title: { text: "true positive rate" }, range: [0, 1.02], scaleanchor: "x" },
    legend: { x: 1, xanchor: "right", y: 0, yanchor: "bottom" },
  });
}

function confusion() {
  const box = document.getElementById("figure-confusion");
  if (!box) return;
  plot(
    box,
    [
      {
        type: "heatmap",
        z: figures.confusion,
        x: figures.classes,
        y: figures.classes,
        colorscale: "Blues",
        reversescale: true,
        texttemplate: "%{z}",
        hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>",
        showscale: false,
      },
    ],
    {
      title: { text: "Confusion matrix" },
      height: 380,
      margin: { l: 100, r: 15, t: 40, b: 60 },
      xaxis: { title: { text: "predicted" }, type: "category" },
      yaxis: { title: { text: "true" }, type: "category", autorange: "reversed" },
    },
  );
}

if (figures && window.Plotly && plot) {
  distributions();
  roc();
  confusion();
}
