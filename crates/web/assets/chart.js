// The video page's chart: cumulative views over time (uPlot), with a marker at every thumbnail or
// title change. Hovering the chart shows the exact figures in the legend; hovering or focusing a
// marker shows the change's before/after thumbnails and titles (the server-rendered card).
// Behind the views: the channel's typical band at the same age (grey), and the rotation periods
// of the video's A/B tests shaded by variant; after each judged change, the views expected without
// it (orange, dashed) with the interval of its effect.
(function () {
  "use strict";
  var dataEl = document.getElementById("series-data");
  var host = document.getElementById("chart");
  if (!dataEl || !host || typeof uPlot === "undefined") return;
  var series = JSON.parse(dataEl.textContent);
  if (!series.points.length) return;

  var exact = new Intl.NumberFormat(undefined);
  var compact = [1, 2, 3].map(function (digits) {
    return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: digits });
  });
  // Axis labels in short form ("3.4K") with as many digits as it takes to tell the ticks apart
  // (a narrow range would otherwise label 3,410 and 3,420 both "3.4K"); exact when none does.
  function tickLabels(u, ticks) {
    for (var i = 0; i < compact.length; i++) {
      var labels = ticks.map(function (t) { return compact[i].format(t); });
      if (new Set(labels).size === labels.length) return labels;
    }
    return ticks.map(function (t) { return exact.format(t); });
  }
  window.tubewatchTickLabels = tickLabels;
  var when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var secs = function (iso) { return Date.parse(iso) / 1000; };

  var xs = series.points.map(function (p) { return secs(p.slot); });
  var views = series.points.map(function (p) { return p.views; });
  var perHour = series.points.map(function (p, i) {
    if (i === 0) return null;
    var hours = (xs[i] - xs[i - 1]) / 3600;
    return hours > 0 ? Math.round((p.views - series.points[i - 1].views) / hours) : null;
  });
  var changes = series.changes.map(function (c, i) { return { x: secs(c.slot), index: i, kind: c.kind }; });
  var overlayEl = document.getElementById("overlay-data");
  var overlay = overlayEl ? JSON.parse(overlayEl.textContent) : { band: [], periods: [], counterfactual: [] };
  var variantFill = ["rgba(37,99,235,0.13)", "rgba(234,88,12,0.13)", "rgba(22,163,74,0.13)", "rgba(147,51,234,0.13)"];

  // Keeps change times inside the x range even when a change precedes the first point.
  var xMin = Math.min.apply(null, xs.concat(changes.map(function (c) { return c.x; })));
  var xMax = Math.max.apply(null, xs.concat(changes.map(function (c) { return c.x; })));
  if (xMax - xMin < 3600) { xMin -= 1800; xMax += 1800; } // a single measurement still gets an axis

  var tip = document.createElement("div");
  tip.className = "change-tip";
  tip.setAttribute("role", "tooltip");
  tip.id = "change-tip";
  tip.hidden = true;

  function showTip(marker, change) {
    var card = document.getElementById("change-" + change.index);
    tip.innerHTML = "";
    if (card) tip.appendChild(card.cloneNode(true)).removeAttribute("id");
    tip.hidden = false;
    var left = Math.max(0, Math.min(marker.offsetLeft - 120, host.clientWidth - tip.offsetWidth));
    tip.style.left = left + "px";
  }
  function hideTip() { tip.hidden = true; }

  function placeMarkers(u) {
    u.over.querySelectorAll(".change-marker").forEach(function (m) {
      var change = changes[+m.dataset.change];
      m.style.left = u.valToPos(change.x, "x") + "px";
    });
  }

  function addMarkers(u) {
    changes.forEach(function (change, i) {
      var m = document.createElement("button");
      m.type = "button";
      m.className = "change-marker change-" + change.kind;
      m.dataset.change = i;
      m.setAttribute("aria-describedby", "change-tip");
      m.setAttribute("aria-label", (change.kind === "thumbnail" ? "Thumbnail" : "Title") + " changed " +
        when.format(new Date(change.x * 1000)));
      m.textContent = change.kind === "thumbnail" ? "T" : "A";
      m.addEventListener("mouseenter", function () { showTip(m, change); });
      m.addEventListener("focus", function () { showTip(m, change); });
      m.addEventListener("mouseleave", hideTip);
      m.addEventListener("blur", hideTip);
      u.over.appendChild(m);
    });
    placeMarkers(u);
  }

  // Dashed vertical lines under the markers.
  function drawLines(u) {
    var ctx = u.ctx;
    ctx.save();
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    changes.forEach(function (change) {
      var x = Math.round(u.valToPos(change.x, "x", true));
      ctx.strokeStyle = change.kind === "thumbnail" ? "#c2410c" : "#6d28d9";
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    });
    ctx.restore();
  }

  // Rotation periods of A/B tests, shaded under the series.
  function drawPeriods(u) {
    if (!overlay.periods.length) return;
    var ctx = u.ctx;
    var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
    ctx.save();
    overlay.periods.forEach(function (p) {
      var x0 = Math.max(left, u.valToPos(p[0], "x", true));
      var x1 = Math.min(right, u.valToPos(p[1], "x", true));
      if (x1 <= x0) return;
      ctx.fillStyle = variantFill[p[2] % variantFill.length];
      ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
    });
    ctx.restore();
  }

  function width() { return Math.max(280, host.clientWidth); }
  function height() { return window.innerWidth < 600 ? 240 : 320; }

  var fmtExact = function (u, v) { return v == null ? "—" : exact.format(Math.round(v)); };
  var series_ = [
    { value: function (u, v) { return v == null ? "—" : when.format(new Date(v * 1000)); } },
    { label: "Views", stroke: "#2563eb", width: 2, spanGaps: true, value: fmtExact },
    { label: "Views per hour", stroke: "#16a34a", width: 1, scale: "rate", show: false, spanGaps: true, value: fmtExact },
  ];
  var data = [xs, views, perHour];
  var bands = [];
  if (overlay.band.length) {
    var col = function (i) { return overlay.band.map(function (p) { return p[i]; }); };
    data = uPlot.join([data, [col(0), col(1), col(2), col(3)]]);
    series_.push(
      { label: "Typical low (P25)", stroke: "#9ca3af", width: 1, spanGaps: true, value: fmtExact },
      { label: "Typical (median)", stroke: "#6b7280", width: 1, dash: [6, 4], spanGaps: true, value: fmtExact },
      { label: "Typical high (P75)", stroke: "#9ca3af", width: 1, spanGaps: true, value: fmtExact }
    );
    bands.push({ series: [5, 3], fill: "rgba(107,114,128,0.16)" });
  } else {
    series_[1].fill = "rgba(37,99,235,0.08)";
  }
  // After each judged change: the views expected without it, and the interval of its effect.
  var counterfactual = overlay.counterfactual || [];
  if (counterfactual.length) {
    var first = data.length;
    var cf = function (i) { return counterfactual.map(function (p) { return p[i]; }); };
    data = uPlot.join([data, [cf(0), cf(1), cf(2), cf(3)]]);
    series_.push(
      { label: "Without the change (low)", stroke: "rgba(234,88,12,0.4)", width: 1, value: fmtExact },
      { label: "Without the change (expected)", stroke: "#ea580c", width: 2, dash: [8, 4], value: fmtExact },
      { label: "Without the change (high)", stroke: "rgba(234,88,12,0.4)", width: 1, value: fmtExact }
    );
    bands.push({ series: [first + 2, first], fill: "rgba(234,88,12,0.14)" });
  }

  var opts = {
    width: width(),
    height: height(),
    scales: { x: { time: true, range: function () { return [xMin, xMax]; } } },
    series: series_,
    bands: bands,
    axes: [
      {},
      { values: tickLabels, size: 60 },
      { scale: "rate", side: 1, grid: { show: false }, size: 60, values: tickLabels },
    ],
    hooks: { drawClear: [drawPeriods], draw: [drawLines], ready: [addMarkers], setSize: [placeMarkers] },
  };
  var plot = new uPlot(opts, data, host);
  host.appendChild(tip);
  host.dataset.ready = "true";
  window.addEventListener("resize", function () { plot.setSize({ width: width(), height: height() }); });
})();
