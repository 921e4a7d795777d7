// Plots and sortable tables of the dnsloss HTML report. The numbers come from the report's own
// JSON (script#report-data); nothing is fetched.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var palette = ["#2f6fdf", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#c2255c", "#5c940d", "#868e96"];

  function width(el) { return Math.max(280, el.clientWidth - 4); }

  function empty(el, text) {
    var p = document.createElement("p");
    p.className = "note";
    p.textContent = text;
    el.appendChild(p);
    el.setAttribute("data-empty", "1");
  }

  // Bars over categories: x is the category index, labels name it.
  function barChart(el, labels, series, xLabel, yLabel) {
    var xs = labels.map(function (_, i) { return i; });
    var rotate = labels.length > 6;
    var opts = {
      width: width(el), height: 260,
      scales: { x: { time: false, range: [-0.6, labels.length - 0.4] }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [
        { splits: function () { return xs; }, values: function (u, splits) { return splits.map(function (i) { return labels[i] === undefined ? "" : labels[i]; }); },
          rotate: rotate ? -35 : 0, size: rotate ? 90 : 50, gap: 4, label: xLabel, labelSize: 18 },
        { label: yLabel, size: 50 }
      ],
      series: [{ label: xLabel, value: function (u, i) { return i == null ? "" : labels[i]; } }],
      legend: { show: true }
    };
    var values = [xs];
    var n = series.length;
    series.forEach(function (s, k) {
      opts.series.push({
        label: s.label, fill: s.color + "cc", stroke: s.color, width: 1, points: { show: false },
        // one series: centred on its category; two: side by side (left, right).
        paths: uPlot.paths.bars({ size: [n === 1 ? 0.7 : 0.35, 80], align: n === 1 ? 0 : (k === 0 ? -1 : 1) })
      });
      values.push(s.values);
    });
    return new uPlot(opts, values, el);
  }

  function hostsChart() {
    var el = document.getElementById("chart-hosts");
    var hosts = data.hosts.slice().sort(function (a, b) {
      return (b.unanswered + b.failed_lookups) - (a.unanswered + a.failed_lookups) || (a.host < b.host ? -1 : 1);
    });
    if (hosts.length === 0) { return empty(el, "No hosts in this period."); }
    if (hosts.length > 40) { hosts = hosts.slice(0, 40); }
    var series = [{ label: "unanswered queries", color: palette[1], values: hosts.map(function (h) { return h.unanswered; }) }];
    if (data.lookups) {
      series.push({ label: "failed lookups", color: palette[0], values: hosts.map(function (h) { return h.failed_lookups; }) });
    }
    barChart(el, hosts.map(function (h) { return h.host; }), series, "host", "count");
  }

  function rttChart() {
    var el = document.getElementById("chart-rtt");
    if (data.rtt.length === 0) { return empty(el, "No answered queries in this period."); }
    var labels = data.rtt.map(function (b, i) {
      if (b.le_ms === null) { return "> " + data.rtt[i - 1].le_ms; }
      return "\u2264 " + b.le_ms;
    });
    barChart(el, labels, [{ label: "answered queries", color: palette[0], values: data.rtt.map(function (b) { return b.answered; }) }], "round-trip time (ms)", "queries");
  }

  function timelineChart() {
    var el = document.getElementById("chart-timeline");
    var tl = data.timeline;
    if (tl.buckets_ms.length === 0 || tl.series.length === 0) { return empty(el, "No queries in this period."); }
    var total = function (s) { return s.unanswered.reduce(function (a, b) { return a + b; }, 0); };
    var series = tl.series.slice().sort(function (a, b) { return total(b) - total(a) || (a.host < b.host ? -1 : 1); });
    var shown = series.slice(0, 8);
    if (series.length > 8) {
      var other = tl.buckets_ms.map(function () { return 0; });
      series.slice(8).forEach(function (s) { s.unanswered.forEach(function (v, i) { other[i] += v; }); });
      shown.push({ host: "other hosts (" + (series.length - 8) + ")", unanswered: other });
    }
    var xs = tl.buckets_ms.map(function (ms) { return ms / 1000; });
    var opts = {
      width: width(el), height: 260,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [
        { label: "time (UTC)", labelSize: 18, size: 40, space: 90, values: function (u, splits) {
          var span = xs[xs.length - 1] - xs[0];
          return splits.map(function (t) {
            var iso = new Date(t * 1000).toISOString();
            return span > 86400 ? iso.slice(5, 10) + " " + iso.slice(11, 16) : iso.slice(11, 19);
          });
        } },
        { label: "unanswered per " + (tl.step_ms / 1000) + " s", size: 50 }
      ],
      series: [{ label: "bucket start (UTC)", value: function (u, t) { return t == null ? "" : new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19); } }]
    };
    var values = [xs];
    shown.forEach(function (s, k) {
      opts.series.push({ label: s.host, stroke: palette[k % palette.length], width: 2, paths: uPlot.paths.stepped({ align: 1 }), points: { show: xs.length < 80 } });
      values.push(s.unanswered);
    });
    new uPlot(opts, values, el);
  }

  // Sortable tables: click a header to sort by that column; again to reverse.
  function sortable(table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var numeric = th.classList.contains("num");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].textContent, y = b.cells[col].textContent, c;
          if (numeric) {
            var fx = x === "-" ? -Infinity : parseFloat(x), fy = y === "-" ? -Infinity : parseFloat(y);
            c = fx === fy ? 0 : (fx < fy ? -1 : 1);
          } else {
            c = x.localeCompare(y);
          }
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  hostsChart();
  rttChart();
  timelineChart();
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), sortable);
})();
