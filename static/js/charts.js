/* Draws every element with data-chart="<id of a json_script element>" with Apache ECharts.
   Without JavaScript (or without ECharts) the data table next to it stays the view. */
(function () {
  "use strict";
  function node(tag, className, text) {
    var el = document.createElement(tag);
    el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function tooltip(params, fmt) {
    var rows = Array.isArray(params) ? params : [params];
    var box = node("div", "chart-tip");
    if (rows.length) box.appendChild(node("div", "chart-tip-axis", rows[0].axisValueLabel || rows[0].name || ""));
    rows.forEach(function (p) {
      var row = node("div", "chart-tip-row");
      var marker = node("span", "chart-tip-marker");
      // The series colour through the CSSOM: the policy refuses style attributes, not element.style.
      if (typeof p.color === "string") marker.style.backgroundColor = p.color;
      row.appendChild(marker);
      row.appendChild(node("span", "chart-tip-name", p.seriesName));
      row.appendChild(node("span", "chart-tip-value", fmt(p.value)));
      box.appendChild(row);
    });
    return box;
  }
  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || !window.echarts) return;
    var spec = JSON.parse(source.textContent);
    var lang = (document.documentElement.lang || "zh-hans").toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN";
    var percent = spec.unit === "percent";
    el.hidden = false;
    var chart = window.echarts.init(el, null, { renderer: "svg", locale: lang });
    var fmt = function (v) {
      if (v === null || v === undefined) return "—";
      return percent ? v.toFixed(2) + "%" : v.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    };
    chart.setOption({
      animation: false,
      // Built as DOM nodes, not ECharts' default HTML string: that one carries inline style attributes,
      // which the Content-Security-Policy refuses (style-src-attr 'none').
      tooltip: { trigger: "axis", className: "chart-tooltip", formatter: function (params) { return tooltip(params, fmt); } },
      legend: { show: spec.series.length > 1, top: 0 },
      grid: { left: 8, right: 16, top: spec.series.length > 1 ? 32 : 12, bottom: 24, containLabel: true },
      xAxis: { type: "category", boundaryGap: false, data: spec.series[0].points.map(function (p) { return p[0]; }) },
      yAxis: { type: "value", scale: true, axisLabel: { formatter: fmt } },
      series: spec.series.map(function (s) {
        return { name: s.name, type: "line", showSymbol: false, connectNulls: true, data: s.points.map(function (p) { return p[1]; }) };
      })
    });
    el.setAttribute("data-drawn", String(spec.series[0].points.length));
    var table = el.parentNode.querySelector("details.chart-table");
    if (table) table.open = false;
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function all() { Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", all); else all();
})();
