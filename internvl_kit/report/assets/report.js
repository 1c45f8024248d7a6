// The run report's charts (SVG, drawn from the JSON embedded in the page) and the gallery filter.
// No libraries and no requests: the page works opened from disk with the network off.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2f5bd3", "#d1495b", "#2a9d8f", "#e9a23b", "#7b4fc4", "#5c6b7a", "#c2410c", "#0e7490"];
  const W = 640, H = 250, M = {l: 58, r: 14, t: 12, b: 34};
  const data = JSON.parse(document.getElementById("report-data").textContent);

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) { const d = Math.abs(lo) || 1; lo -= d / 2; hi += d / 2; }
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(f => f * mag).find(s => s >= raw);
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
    return {lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), ticks: ticks};
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return +v.toPrecision(4) + "";
  }

  function drawChart(box, chart) {
    const lines = chart.lines.filter(l => l.points.length);
    const pts = lines.flatMap(l => l.points);
    const bars = chart.kind === "bars";
    const xs = bars ? chart.edges : pts.map(p => p[0]);
    const ys = bars ? chart.counts.concat([0]) : pts.map(p => p[1]);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    const yt = niceTicks(Math.min(...ys), Math.max(...ys), 5);
    const X = v => M.l + (v - x0) / (x1 - x0) * (W - M.l - M.r);
    const Y = v => H - M.b - (v - yt.lo) / (yt.hi - yt.lo) * (H - M.t - M.b);
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": chart.title});
    const grid = el("g", {class: "grid"}, svg), axis = el("g", {class: "axis"}, svg);
    for (const t of yt.ticks) {
      el("line", {x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t)}, grid);
      el("text", {x: M.l - 6, y: Y(t) + 3, "text-anchor": "end"}, axis).textContent = fmt(t);
    }
    for (const t of niceTicks(x0, x1, 6).ticks.filter(t => t >= x0 && t <= x1)) {
      el("line", {x1: X(t), x2: X(t), y1: H - M.b, y2: H - M.b + 4}, axis);
      el("text", {x: X(t), y: H - M.b + 15, "text-anchor": "middle"}, axis).textContent = fmt(t);
    }
    el("path", {d: `M${M.l},${M.t}V${H - M.b}H${W - M.r}`, fill: "none"}, axis);
    el("text", {x: (M.l + W - M.r) / 2, y: H - 4, "text-anchor": "middle"}, axis).textContent = chart.xlabel || "step";
    el("text", {x: 12, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
                transform: `rotate(-90 12 ${(M.t + H - M.b) / 2})`}, axis).textContent = chart.ylabel;
    for (const mark of chart.marks || []) {
      if (mark.x < x0 || mark.x > x1) continue;
      const g = el("g", {class: "mark"}, svg), colour = mark.kind === "resume" ? "#c2410c" : "#9aa3b2";
      el("line", {x1: X(mark.x), x2: X(mark.x), y1: M.t, y2: H - M.b, stroke: colour}, g);
      const right = X(mark.x) > W - 90;                 // a label near the right edge goes left of its line
      el("text", {x: X(mark.x) + (right ? -2 : 2), y: M.t + 8 + (mark.kind === "resume" ? 10 : 0), fill: colour,
                  "text-anchor": right ? "end" : "start"}, g).textContent = mark.label;
    }
    if (bars) {
      chart.counts.forEach((c, i) => {
        const left = X(chart.edges[i]), right = X(chart.edges[i + 1]);
        el("rect", {class: "bar", x: left + 0.5, width: Math.max(1, right - left - 1), y: Y(c), height: Y(0) - Y(c),
                    fill: PALETTE[0]}, svg).appendChild(el("title", {})).textContent =
          `${chart.edges[i]}-${chart.edges[i + 1] - 1} tokens: ${c} rows`;
      });
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    lines.forEach((line, i) => {
      const colour = PALETTE[(line.slot ?? i) % PALETTE.length];
      const d = line.points.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
      const attrs = {class: "curve", d: d, fill: "none", stroke: colour, "stroke-width": line.style === "raw" ? 1 : 2};
      if (line.style === "raw") attrs["stroke-opacity"] = 0.35;
      if (line.style === "eval") attrs["stroke-dasharray"] = "5 3";
      el("path", attrs, svg);
      if (line.style === "eval" || line.points.length === 1) {
        for (const p of line.points) el("circle", {class: "point", cx: X(p[0]), cy: Y(p[1]), r: 3, fill: colour}, svg);
      }
      const item = document.createElement("span");
      item.innerHTML = `<i style="background:${colour}"></i>`;
      item.appendChild(document.createTextNode(line.name));
      legend.appendChild(item);
    });
    const h = document.createElement("h3");
    h.textContent = chart.title;
    box.append(h, svg, legend);
    if (!bars) hover(box, svg, lines, X, x0, x1);
  }

  function hover(box, svg, lines, X, x0, x1) {
    const tip = document.createElement("div");
    tip.className = "tip";
    box.appendChild(tip);
    const cursor = el("line", {y1: M.t, y2: H - M.b, stroke: "#1d2330", "stroke-opacity": 0.25, visibility: "hidden"}, svg);
    svg.addEventListener("mousemove", ev => {
      const r = svg.getBoundingClientRect();
      const sx = (ev.clientX - r.left) / r.width * W;
      const step = x0 + (sx - M.l) / (W - M.l - M.r) * (x1 - x0);
      const rows = [];
      let near = null;
      for (const line of lines) {
        let best = line.points[0];
        for (const p of line.points) if (Math.abs(p[0] - step) < Math.abs(best[0] - step)) best = p;
        if (near === null || Math.abs(best[0] - step) < Math.abs(near - step)) near = best[0];
        rows.push(`${line.name}: ${fmt(best[1])} @ ${best[0]}`);
      }
      cursor.setAttribute("x1", X(near)); cursor.setAttribute("x2", X(near)); cursor.setAttribute("visibility", "visible");
      tip.textContent = "";
      rows.forEach(t => { const d = document.createElement("div"); d.textContent = t; tip.appendChild(d); });
      tip.style.display = "block";
      tip.style.left = Math.min(ev.clientX - box.getBoundingClientRect().left + 12, box.clientWidth - tip.offsetWidth) + "px";
      tip.style.top = "28px";
    });
    svg.addEventListener("mouseleave", () => { tip.style.display = "none"; cursor.setAttribute("visibility", "hidden"); });
  }

  document.querySelectorAll("[data-chart]").forEach(box => drawChart(box, data.charts[+box.dataset.chart]));

  const gallery = document.querySelector(".gallery");
  if (gallery) {
    const text = document.getElementById("filter-text"), status = document.getElementById("filter-status");
    const count = document.getElementById("filter-count");
    const entries = Array.from(gallery.querySelectorAll(".entry"));
    const apply = () => {
      const q = text.value.trim().toLowerCase(), s = status.value;
      let shown = 0;
      for (const e of entries) {
        const ok = (!q || e.dataset.search.includes(q)) && (s === "all" || e.dataset.status.split(" ").includes(s));
        e.classList.toggle("hidden", !ok);
        shown += ok;
      }
      count.textContent = `${shown} of ${entries.length} rows`;
    };
    text.addEventListener("input", apply);
    status.addEventListener("change", apply);
    apply();
  }
})();
