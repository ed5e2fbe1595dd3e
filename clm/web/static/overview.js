// The overview's charts, drawn by ECharts from the figures the page carries as JSON.
(function () {
  "use strict";
  const FONT = 'system-ui, -apple-system, "PingFang SC", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif';
  const ACCENT = "#0f766e";
  const WEAK = "#b42318";

  function read(id) {
    const el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function percent(value) {
    return value === null ? "–" : (value * 100).toFixed(1) + "%";
  }

  function draw() {
    const data = read("overview-data");
    const labels = read("overview-labels");
    if (!data || !window.echarts) return;
    const charts = [];

    const stageEl = document.getElementById("stage-chart");
    if (stageEl) {
      const chart = echarts.init(stageEl, null, { renderer: "svg" });
      const stages = data.stages.slice().reverse();
      chart.setOption({
        textStyle: { fontFamily: FONT },
        grid: { left: 8, right: 48, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "value", splitLine: { lineStyle: { color: "#eef2f5" } } },
        yAxis: { type: "category", data: stages.map((s) => s.name), axisTick: { show: false } },
        series: [{
          name: labels.customers, type: "bar", barMaxWidth: 26,
          data: stages.map((s) => s.customers),
          itemStyle: { color: ACCENT, borderRadius: [0, 4, 4, 0] },
          label: { show: true, position: "right" },
        }],
      });
      charts.push(chart);
    }

    const funnelEl = document.getElementById("funnel-chart");
    if (funnelEl) {
      const chart = echarts.init(funnelEl, null, { renderer: "svg" });
      const steps = data.funnel.steps;
      chart.setOption({
        textStyle: { fontFamily: FONT },
        grid: { left: 8, right: 8, top: 24, bottom: 8, containLabel: true },
        tooltip: {
          trigger: "axis", axisPointer: { type: "shadow" },
          formatter: (items) => {
            const s = steps[items[0].dataIndex];
            return `${s.from_name} → ${s.to_name}<br>${labels.conversion}: ${percent(s.conversion)}` +
              `<br>${labels.reached}: ${s.reached}<br>${labels.converted}: ${s.converted}` +
              (s.weak ? `<br><b>${labels.weak}</b>` : "");
          },
        },
        xAxis: { type: "category", data: steps.map((s) => `${s.from_name}\n→ ${s.to_name}`), axisTick: { show: false },
                 axisLabel: { interval: 0, lineHeight: 16 } },
        yAxis: { type: "value", max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" },
                 splitLine: { lineStyle: { color: "#eef2f5" } } },
        series: [{
          name: labels.conversion, type: "bar", barMaxWidth: 48,
          data: steps.map((s) => ({ value: s.conversion, itemStyle: { color: s.weak ? WEAK : ACCENT } })),
          itemStyle: { borderRadius: [4, 4, 0, 0] },
          label: { show: true, position: "top", formatter: (p) => percent(p.value) },
        }],
      });
      charts.push(chart);
    }
    const flowEl = document.getElementById("flow-chart");
    if (flowEl) {
      // left and right are separate nodes (stages can be left and re-entered: no cycles)
      const shown = {};
      const nodes = [];
      const add = (key, name) => { if (!(key in shown)) { shown[key] = name; nodes.push({ name: key }); } };
      const links = data.flows.map((f) => {
        const source = "from:" + (f.from || "");
        const target = "to:" + f.to;
        add(source, f.from_name || labels.entered);
        add(target, f.to_name);
        return { source: source, target: target, value: f.moves, customers: f.customers };
      });
      const chart = echarts.init(flowEl, null, { renderer: "svg" });
      chart.setOption({
        textStyle: { fontFamily: FONT },
        tooltip: {
          trigger: "item",
          formatter: (p) => p.dataType === "edge"
            ? `${shown[p.data.source]} → ${shown[p.data.target]}<br>${labels.moves}: ${p.data.value}`
            : `${shown[p.name]}: ${p.value}`,
        },
        series: [{
          type: "sankey", left: 8, right: 72, top: 8, bottom: 8, nodeGap: 10, draggable: false,
          data: nodes, links: links,
          label: { formatter: (p) => shown[p.name] },
          lineStyle: { color: "gradient", opacity: 0.35 },
          itemStyle: { color: ACCENT, borderWidth: 0 },
          emphasis: { focus: "adjacency" },
        }],
      });
      charts.push(chart);
    }

    const channelEl = document.getElementById("channel-chart");
    if (channelEl) {
      const rows = data.channels;
      const chart = echarts.init(channelEl, null, { renderer: "svg" });
      chart.setOption({
        textStyle: { fontFamily: FONT },
        legend: { top: 0 },
        grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "category", data: rows.map((r) => r.channel), axisTick: { show: false },
                 axisLabel: { interval: 0, hideOverlap: true } },
        yAxis: [
          { type: "value", splitLine: { lineStyle: { color: "#eef2f5" } } },
          { type: "value", splitLine: { show: false } },
        ],
        series: [
          { name: labels.new_customers, type: "bar", barMaxWidth: 28, data: rows.map((r) => r.new_customers),
            itemStyle: { color: ACCENT, borderRadius: [4, 4, 0, 0] } },
          { name: labels.revenue, type: "bar", barMaxWidth: 28, yAxisIndex: 1, data: rows.map((r) => r.revenue),
            itemStyle: { color: "#8fb8de", borderRadius: [4, 4, 0, 0] } },
        ],
      });
      charts.push(chart);
    }
    const riskEl = document.getElementById("risk-chart");
    if (riskEl) {
      const bands = data.risk.bands;
      const colors = { high: "#b42318", medium: "#f79009", low: "#12b76a", lost: "#98a2b3" };
      const chart = echarts.init(riskEl, null, { renderer: "svg" });
      chart.setOption({
        textStyle: { fontFamily: FONT },
        grid: { left: 8, right: 96, top: 8, bottom: 8, containLabel: true },
        tooltip: { trigger: "item", formatter: (p) => `${p.name}: ${p.value} (${percent(bands[p.dataIndex].share)})` },
        xAxis: { type: "value", splitLine: { lineStyle: { color: "#eef2f5" } } },
        yAxis: { type: "category", data: bands.map((b) => b.name), inverse: true, axisTick: { show: false } },
        series: [{
          type: "bar", barMaxWidth: 24,
          data: bands.map((b) => ({ value: b.customers, itemStyle: { color: colors[b.band] || ACCENT } })),
          label: { show: true, position: "right", formatter: (p) => `${p.value} · ${percent(bands[p.dataIndex].share)}` },
        }],
      });
      charts.push(chart);
    }

    const satisfactionEl = document.getElementById("satisfaction-chart");
    if (satisfactionEl) {
      const months = data.satisfaction;
      const chart = echarts.init(satisfactionEl, null, { renderer: "svg" });
      const answers = (key) => (p) => `${p.seriesName}: ${p.value === null ? "–" : p.value.toFixed(1)}` +
        ` (${labels.answers}: ${months[p.dataIndex][key]})`;
      chart.setOption({
        textStyle: { fontFamily: FONT },
        legend: { top: 0 },
        grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
        tooltip: { trigger: "item" },
        xAxis: { type: "category", data: months.map((m) => m.month), axisTick: { show: false } },
        yAxis: { type: "value", min: -100, max: 100, splitLine: { lineStyle: { color: "#eef2f5" } } },
        series: [
          { name: "NPS", type: "line", connectNulls: true, data: months.map((m) => m.nps), itemStyle: { color: ACCENT },
            tooltip: { formatter: answers("nps_responses") } },
          { name: "CSAT %", type: "line", connectNulls: true, data: months.map((m) => m.csat), itemStyle: { color: "#f79009" },
            tooltip: { formatter: answers("csat_responses") } },
        ],
      });
      charts.push(chart);
    }

    const cohortEl = document.getElementById("cohort-chart");
    if (cohortEl) {
      const rows = data.cohorts.slice().reverse();  // the newest cohort at the top
      const width = Math.max(...data.cohorts.map((c) => c.active.length));
      const cells = [];
      rows.forEach((c, y) => c.active.forEach((share, x) => {
        if (share === null) return;
        const running = c.partial === x;
        cells.push({
          value: [x, y, share],
          itemStyle: running ? { borderColor: "#1f2933", borderWidth: 1.5, borderType: "dashed" } : {},
        });
      }));
      const chart = echarts.init(cohortEl, null, { renderer: "svg" });
      chart.setOption({
        textStyle: { fontFamily: FONT },
        grid: { left: 24, right: 8, top: 8, bottom: 48, containLabel: true },
        tooltip: {
          formatter: (p) => {
            const c = rows[p.value[1]];
            return `${c.cohort} (${c.customers})<br>${labels.months_after}: ${p.value[0]}` +
              `<br>${labels.active_share}: ${percent(p.value[2])}` +
              (c.partial === p.value[0] ? `<br><i>${labels.running}</i>` : "");
          },
        },
        xAxis: { type: "category", data: [...Array(width).keys()].map(String), name: labels.months_after,
                 nameLocation: "middle", nameGap: 28, splitArea: { show: true } },
        yAxis: { type: "category", data: rows.map((c) => `${c.cohort} (${c.customers})`), splitArea: { show: true } },
        visualMap: { show: false, min: 0, max: 1, inRange: { color: ["#f0f7f6", "#7cc3b8", "#0f766e"] } },
        series: [{
          type: "heatmap", data: cells,
          label: { show: true, fontSize: 10, formatter: (p) => Math.round(p.value[2] * 100) + "%" },
        }],
      });
      charts.push(chart);
    }
    window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  }

  // a filter drop-down applies as soon as it is changed (its form's button does it without scripts)
  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach((el) => {
      el.addEventListener("change", () => el.form.submit());
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("DOMContentLoaded", autosubmit);
})();
