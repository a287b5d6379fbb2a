// The readers page's bar chart: per reader, the model against that reader and that reader
// against the other readers (means with 95 % intervals), for the metric chosen above it, with
// the model against the pooled readers and the inter-observer ceiling as reference lines.

const { data, plot } = window.evaluationFigures || {};
const figures = data ? data() : null;
const box = document.getElementById("figure-readers");
const picker = document.getElementById("readers-metric");

function bars(key, name, color, metric) {
  const stats = figures.readers.map((r) => (r[key] || {})[metric] || null);
  return {
    type: "bar",
    name,
    x: figures.readers.map((r) => r.code),
    y: stats.map((s) => (s ? s.mean : null)),
    error_y: {
      type: "data",
      symmetric: false,
      array: stats.map((s) => (s ? s.ci95_high - s.mean : null)),
      arrayminus: stats.map((s) => (s ? s.mean - s.ci95_low : null)),
    },
    marker: { color },
    customdata: stats.map((s) => (s ? [s.n, s.ci95_low, s.ci95_high] : [null, null, null])),
    hovertemplate: "%{x}: %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}], n %{customdata[0]}<extra>" + name + "</extra>",
  };
}

function reference(stats, name, dash) {
  if (!stats) return [];
  return [
    {
      type: "scatter",
      mode: "lines",
      name,
      x: figures.readers.map((r) => r.code),
      y: figures.readers.map(() => stats.mean),
      line: { dash, color: "#5b6470", width: 1.5 },
      hovertemplate: `${name}: %{y:.3f}<extra></extra>`,
    },
  ];
}

function draw() {
  const metric = picker.value;
  const meta = figures.metrics.find((m) => m.key === metric);
  const traces = [
    bars("model", "Model vs reader", "#1f5fbf", metric),
    bars("others", "Reader vs the other readers", "#17663a", metric),
    ...reference((figures.model || {})[metric], "Model vs pooled readers", "dash"),
    ...reference((figures.ceiling || {})[metric], "Inter-observer ceiling", "dot"),
  ];
  box.dataset.filename = `${figures.name}-${metric}`;
  plot(box, traces, {
    title: { text: `${meta.label} per reader (${meta.lower_is_better ? "lower" : "higher"} is better)` },
    barmode: "group",
    height: 380,
    yaxis: { title: { text: meta.label } },
    legend: { orientation: "h", y: -0.2 },
  });
}

if (figures && box && picker && window.Plotly && plot) {
  picker.addEventListener("change", draw);
  draw();
}
