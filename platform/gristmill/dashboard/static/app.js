// Draws the dashboard's charts with the vendored Plotly; data comes from JSON blocks in the page.
(function () {
  function data(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  function done(id) { var el = document.getElementById(id); if (el) el.setAttribute("data-drawn", "1"); }
  var cfg = { displaylogo: false, responsive: true };
  function lineage() {
    var edges = data("lineage-data"); if (!edges || !edges.length) return;
    var order = ["file", "table", "dataset", "training_set", "model", "deployment", "bento"];
    var nodes = {}, layers = {};
    edges.forEach(function (e) { [e.src, e.dst].forEach(function (n) { if (nodes[n]) return;
      var kind = n.split(":")[0], layer = order.indexOf(kind); if (layer < 0) layer = order.length;
      layers[layer] = (layers[layer] || 0) + 1; nodes[n] = { x: layer, y: layers[layer], kind: kind }; }); });
    var ex = [], ey = [];
    edges.forEach(function (e) { ex.push(nodes[e.src].x, nodes[e.dst].x, null); ey.push(nodes[e.src].y, nodes[e.dst].y, null); });
    var names = Object.keys(nodes);
    Plotly.newPlot("lineage", [
      { x: ex, y: ey, mode: "lines", line: { color: "#9aa8b8" }, hoverinfo: "none", showlegend: false },
      { x: names.map(function (n) { return nodes[n].x; }), y: names.map(function (n) { return nodes[n].y; }),
        text: names.map(function (n) { return n.length > 40 ? n.slice(0, 40) + "…" : n; }), mode: "markers+text",
        textposition: "top center", marker: { size: 14, color: names.map(function (n) { return nodes[n].x; }), colorscale: "Viridis" },
        hovertext: names, hoverinfo: "text", showlegend: false }
    ], { margin: { t: 20, l: 20, r: 20, b: 20 }, xaxis: { visible: false }, yaxis: { visible: false } }, cfg).then(function () { done("lineage"); });
  }
  function training() {
    var d = data("points-data"); if (!d) return;
    var byTrainer = {};
    d.points.forEach(function (p) { (byTrainer[p.trainer] = byTrainer[p.trainer] || []).push(p); });
    var time = Object.keys(byTrainer).map(function (t) { return { name: t, mode: "markers", type: "scatter",
      x: byTrainer[t].map(function (p) { return new Date(p.t); }), y: byTrainer[t].map(function (p) { return p.score; }) }; });
    Plotly.newPlot("score-time", time, { title: d.metric + " over time", margin: { t: 40 } }, cfg).then(function () { done("score-time"); });
    var box = Object.keys(byTrainer).map(function (t) { return { name: t, type: "box", y: byTrainer[t].map(function (p) { return p.score; }) }; });
    Plotly.newPlot("score-trainer", box, { title: d.metric + " by trainer", margin: { t: 40 }, showlegend: false }, cfg).then(function () { done("score-trainer"); });
  }
  function drift() {
    var at = data("drift-data"); if (!at) return;
    var share = data("drift-share"), alerts = data("drift-alerts") || [];
    Plotly.newPlot("drift", [
      { x: at, y: share, name: "drift share", mode: "lines+markers" },
      { x: at, y: alerts.map(function (a) { return (a || []).length; }), name: "alerts", type: "bar", yaxis: "y2", opacity: 0.4 }
    ], { title: "Drift share and alerts over time", margin: { t: 40 }, yaxis: { range: [0, 1], title: "share" },
         yaxis2: { overlaying: "y", side: "right", title: "alerts" } }, cfg).then(function () { done("drift"); });
  }
  function latency() {
    var s = data("latency-data"); if (!s || !s.length) return;
    var names = s.map(function (r) { return "v" + r.model_version + " " + r.endpoint; });
    var ms = function (v) { return v === null ? null : v * 1000; };
    Plotly.newPlot("latency", [
      { x: names, y: s.map(function (r) { return ms(r.p50_seconds); }), name: "p50 ms", type: "bar" },
      { x: names, y: s.map(function (r) { return ms(r.p99_seconds); }), name: "p99 ms", type: "bar" }
    ], { title: "Request latency by model version (from /metrics)", margin: { t: 40 }, barmode: "group" }, cfg).then(function () { done("latency"); });
  }
  window.addEventListener("DOMContentLoaded", function () {
    if (typeof Plotly === "undefined") return;
    lineage(); training(); drift(); latency();
  });
})();
