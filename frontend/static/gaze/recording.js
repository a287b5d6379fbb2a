// Draw each reading's fixations and scanpath over its image preview (Plotly, served locally).
// Marker area follows fixation duration; the line joins fixations in order.

const source = document.getElementById("scanpath-data");

if (source && window.Plotly) {
  for (const fig of JSON.parse(source.textContent)) {
    const node = document.getElementById(`scanpath-${fig.id}`);
    if (!node) continue;
    const maxDur = Math.max(1, ...fig.duration_ms);
    const traces = [
      {
        type: "scatter", mode: "lines", x: fig.x, y: fig.y, name: "scanpath",
        line: { color: "rgba(255, 200, 0, 0.7)", width: 1.5 }, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "markers+text", x: fig.x, y: fig.y, name: "fixations",
        text: fig.x.map((_, i) => String(i + 1)), textposition: "top center",
        textfont: { color: "white", size: 9 },
        customdata: fig.duration_ms.map((d, i) => [Math.round(d), fig.on_image[i] ? "on image" : "off image"]),
        hovertemplate: "#%{text}: (%{x:.0f}, %{y:.0f}) px, %{customdata[0]} ms, %{customdata[1]}<extra></extra>",
        marker: {
          size: fig.duration_ms.map((d) => 6 + 22 * Math.sqrt(d / maxDur)),
          color: fig.on_image.map((on) => (on ? "rgba(255, 60, 60, 0.6)" : "rgba(120, 120, 255, 0.6)")),
          line: { color: "white", width: 1 },
        },
      },
    ];
    const layout = {
      margin: { l: 30, r: 10, t: 10, b: 30 },
      showlegend: false,
      xaxis: { range: [0, fig.width], showgrid: false, zeroline: false, constrain: "domain" },
      yaxis: { range: [fig.height, 0], showgrid: false, zeroline: false, scaleanchor: "x" },
      images: [{
        source: fig.preview, xref: "x", yref: "y", x: 0, y: 0, sizex: fig.width, sizey: fig.height,
        sizing: "stretch", layer: "below",
      }],
      plot_bgcolor: "black",
    };
    window.Plotly.newPlot(node, traces, layout, { displaylogo: false, responsive: true });
  }
}
