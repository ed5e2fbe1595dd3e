// The campaign page's chart: entered, sent, opened, clicked and converted per day (ECharts).
(function () {
  "use strict";
  const FONT = 'system-ui, -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  const COLOURS = ["#94a3b8", "#0f766e", "#3b6ef5", "#d97706", "#b42318"];

  function read(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function draw() {
    const data = read("campaign-data");
    const labels = read("campaign-labels");
    const el = document.getElementById("campaign-chart");
    if (!data || !el || !window.echarts) return;
    const chart = echarts.init(el, null, { renderer: "svg" });
    const keys = ["entered", "sent", "opened", "clicked", "converted"];
    chart.setOption({
      textStyle: { fontFamily: FONT },
      color: COLOURS,
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      legend: { top: 0, data: keys.map((k) => labels[k]) },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.days, axisTick: { show: false } },
      yAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: "#eef2f5" } } },
      series: keys.map((k) => ({ name: labels[k], type: "line", showSymbol: false, smooth: true, data: data.series[k] })),
    });
    window.addEventListener("resize", () => chart.resize());
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
