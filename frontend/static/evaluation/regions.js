// The regions page's grouped bar chart: per region, the mean share of the model's saliency
// mass, of the readers' pooled fixation time and of each reader's, beside the region's share of
// the image's area (the chance level). Individual readers start hidden (click the legend) when
// there are more than three of them.

const { data, plot } = window.evaluationFigures || {};
const figures = data ? data() : null;
const box = document.getElementById("figure-regions");
const READER_COLORS = ["#6a3d9a", "#b15928", "#33a02c", "#e31a1c", "#1f78b4", "#ff7f00", "#cab2d6"];

function bars(name, values, counts, color, extra = {}) {
  const regions = figures.regions;
  return {
    type: "bar",
    name,
    x: regions.map((r) => r.label),
    y: values,
    marker: { color },
    customdata: regions.map((r, i) => [counts[i], r.n_images]),
    hovertemplate: "%{x}: %{y:.3f} (n %{customdata[0]} of %{customdata[1]} images)<extra>" + name + "</extra>",
    ...extra,
  };
}

function draw() {
  const regions = figures.regions;
  const hideReaders = figures.readers.length > 3;
  const traces = [
    bars("Model", regions.map((r) => r.model_share), regions.map((r) => r.n_model), "#1f5fbf"),
    bars("Readers (pooled)", regions.map((r) => r.dwell_share), regions.map((r) => r.n_dwell), "#17663a"),
    ...figures.readers.map((code, i) =>
      bars(
        code,
        regions.map((r) => (r.reader_dwell_shares || {})[code] ?? null),
        regions.map((r) => (r.reader_n || {})[code] ?? 0),
        READER_COLORS[i % READER_COLORS.length],
        { opacity: 0.75, visible: hideReaders ? "legendonly" : true },
      ),
    ),
    bars("Area (chance)", regions.map((r) => r.area_share), regions.map((r) => r.n_images), "#9aa3ad"),
  ];
  plot(box, traces, {
    title: { text: "Share of attention per region" },
    barmode: "group",
    height: 400,
    yaxis: { title: { text: "Mean share" }, rangemode: "tozero" },
    xaxis: { automargin: true },
    legend: { orientation: "h", y: -0.25 },
  });
}

if (figures && box && window.Plotly && plot) {
  draw();
}
