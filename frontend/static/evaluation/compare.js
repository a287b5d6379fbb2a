// The comparison page's figure: per metric, the rank-biserial effect size of each evaluation
// against the first (filled markers: Holm-adjusted p below 0.05).

const { data, plot } = window.evaluationFigures || {};
const figures = data ? data() : null;
const box = document.getElementById("figure-effects");

if (figures && box && window.Plotly && plot) {
  const labels = Object.fromEntries(figures.metrics.map((m) => [m.key, m.label]));
  const traces = figures.pairs.map((pair) => ({
    type: "scatter",
    mode: "markers",
    name: pair.label,
    y: pair.lines.map((l) => labels[l.key]),
    x: pair.lines.map((l) => l.rank_biserial),
    customdata: pair.lines.map((l) => [l.p_holm === null ? "—" : l.p_holm.toFixed(4)]),
    marker: {
      size: 11,
      symbol: pair.lines.map((l) => (l.better ? "circle" : "circle-open")),
      line: { width: 2 },
    },
    hovertemplate: "%{y}: %{x:.3f} (Holm p %{customdata[0]})<extra>" + pair.label + "</extra>",
  }));
  plot(box, traces, {
    title: { text: "Rank-biserial correlation, first minus other" },
    height: 120 + 32 * figures.metrics.length,
    margin: { l: 90, r: 15, t: 40, b: 45 },
    xaxis: { range: [-1.05, 1.05], zeroline: true, title: { text: "rank-biserial" } },
    yaxis: { autorange: "reversed", type: "category" },
    legend: { orientation: "h", y: -0.25 },
  });
}
