// Segment sizes drawn by ECharts: a sparkline per row of the list, a line on a segment's page.
(function () {
  "use strict";
  const FONT = 'system-ui, -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  const ACCENT = "#0f766e";

  function draw() {
    if (!window.echarts) return;
    const charts = [];
    document.querySelectorAll(".sparkline[data-trend]").forEach((el) => {
      const points = JSON.parse(el.dataset.trend);
      const chart = echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        grid: { left: 2, right: 2, top: 3, bottom: 3 },
        xAxis: { type: "category", show: false, data: points.map((p) => p[0]) },
        yAxis: { type: "value", show: false, scale: true },
        tooltip: { trigger: "axis", confine: true, textStyle: { fontFamily: FONT, fontSize: 12 } },
        series: [{ type: "line", data: points.map((p) => p[1]), showSymbol: true, symbolSize: 3, connectNulls: false,
          lineStyle: { width: 1.6, color: ACCENT }, itemStyle: { color: ACCENT }, areaStyle: { color: "rgba(15,118,110,.12)" } }],
      });
      charts.push(chart);
    });
    const big = document.getElementById("size-chart");
    if (big) {
      const points = JSON.parse(big.dataset.trend);
      const chart = echarts.init(big, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        textStyle: { fontFamily: FONT },
        grid: { left: 8, right: 16, top: 12, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis" },
        xAxis: { type: "category", data: points.map((p) => p[0].slice(5)) },
        yAxis: { type: "value", scale: true, minInterval: 1 },
        series: [{ name: big.dataset.label, type: "line", data: points.map((p) => p[1]), showSymbol: true, showAllSymbol: true, symbolSize: 5,
          lineStyle: { color: ACCENT }, itemStyle: { color: ACCENT }, areaStyle: { color: "rgba(15,118,110,.10)" } }],
      });
      charts.push(chart);
    }
    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
