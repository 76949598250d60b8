// The channel page's typical-band charts (uPlot): per stream, the P25–P75 band and median of the
// channel's views by age, with the newest videos' trajectories over it. Log scale: channels'
// videos differ by orders of magnitude.
(function () {
  "use strict";
  var dataEl = document.getElementById("band-data");
  if (!dataEl || typeof uPlot === "undefined") return;
  var charts = JSON.parse(dataEl.textContent);
  var compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  var exact = new Intl.NumberFormat(undefined);
  var palette = ["#2563eb", "#c2410c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563"];
  var positive = function (v) { return v != null && v >= 1 ? v : null; };
  var fmtViews = function (u, v) { return v == null ? "—" : exact.format(Math.round(v)); };
  var short = function (s) { return s.length > 32 ? s.slice(0, 31) + "…" : s; };

  charts.forEach(function (chart, i) {
    var host = document.getElementById("band-chart-" + i);
    if (!host) return;
    var tables = [[
      chart.band.map(function (p) { return p[0] / 24; }),
      chart.band.map(function (p) { return positive(p[1]); }),
      chart.band.map(function (p) { return positive(p[2]); }),
      chart.band.map(function (p) { return positive(p[3]); }),
    ]];
    chart.videos.forEach(function (v) {
      var pts = v.points.slice().sort(function (a, b) { return a[0] - b[0]; });
      tables.push([pts.map(function (p) { return p[0] / 24; }), pts.map(function (p) { return positive(p[1]); })]);
    });
    var data = uPlot.join(tables);
    var series = [
      { label: "Age", value: function (u, v) { return v == null ? "—" : (v < 2 ? Math.round(v * 24) + " h" : v.toFixed(1) + " d"); } },
      { label: "P25", stroke: "#9ca3af", width: 1, spanGaps: true, value: fmtViews },
      { label: "Median", stroke: "#4b5563", width: 1.5, dash: [6, 4], spanGaps: true, value: fmtViews },
      { label: "P75", stroke: "#9ca3af", width: 1, spanGaps: true, value: fmtViews },
    ];
    chart.videos.forEach(function (v, j) {
      series.push({ label: short(v.title), stroke: palette[j % palette.length], width: 2, spanGaps: true, value: fmtViews });
    });
    var width = function () { return Math.max(280, host.clientWidth); };
    var plot = new uPlot({
      width: width(),
      height: window.innerWidth < 600 ? 240 : 300,
      scales: { x: { time: false }, y: { distr: 3 } },
      series: series,
      bands: [{ series: [3, 1], fill: "rgba(107,114,128,0.18)" }],
      axes: [
        { label: "Age (days)", values: function (u, ticks) { return ticks.map(function (t) { return +t.toFixed(1); }); } },
        // Only powers of ten are labelled: the log scale's minor ticks would overlap.
        { size: 60, values: function (u, ticks) {
          return ticks.map(function (t) {
            var l = Math.log10(t);
            return Math.abs(l - Math.round(l)) < 1e-9 ? compact.format(t) : "";
          });
        } },
      ],
    }, data, host);
    host.dataset.ready = "true";
    window.addEventListener("resize", function () { plot.setSize({ width: width(), height: plot.height }); });
  });
})();
