// A small line chart in SVG, no libraries. drawChart(svg, series) draws every series
// ({name, color, points: [[x, y], ...]}) on shared axes and records the number of points
// drawn in svg.dataset.points (the dashboard test reads it).
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART_COLORS = ['#2f6fdf', '#e0702a', '#2a9d5b', '#b5399e', '#7a5af0', '#c9a227', '#1aa3a3'];

function svgElement(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function formatNumber(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) return v.toExponential(1);
  return v.toPrecision(3);
}

function drawChart(svg, series) {
  const W = 480, H = 220, L = 52, R = 10, T = 10, B = 34;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const all = series.flatMap(s => s.points).filter(p => Number.isFinite(p[1]));
  svg.dataset.points = String(all.length);
  if (all.length === 0) {
    svg.appendChild(svgElement('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle'}, 'no data yet'));
    return;
  }
  let x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += Math.abs(y1) * 0.1 || 1; y0 -= Math.abs(y0) * 0.1 || 0; }
  const sx = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  svg.appendChild(svgElement('line', {class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B}));
  svg.appendChild(svgElement('line', {class: 'axis', x1: L, y1: T, x2: L, y2: H - B}));
  svg.appendChild(svgElement('text', {x: L - 4, y: T + 8, 'text-anchor': 'end'}, formatNumber(y1)));
  svg.appendChild(svgElement('text', {x: L - 4, y: H - B, 'text-anchor': 'end'}, formatNumber(y0)));
  svg.appendChild(svgElement('text', {x: L, y: H - B + 12}, String(x0)));
  svg.appendChild(svgElement('text', {x: W - R, y: H - B + 12, 'text-anchor': 'end'}, 'step ' + x1));
  let legendX = L;
  series.forEach((s, i) => {
    const color = s.color || CHART_COLORS[i % CHART_COLORS.length];
    const pts = s.points.filter(p => Number.isFinite(p[1]));
    if (pts.length > 0) {
      const line = svgElement('polyline', {
        stroke: color, 'data-series': s.name,
        points: pts.map(p => sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join(' ')});
      svg.appendChild(line);
      if (pts.length === 1 || s.dots) {
        for (const p of pts) svg.appendChild(svgElement('circle', {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, fill: color}));
      }
    }
    const label = svgElement('text', {x: legendX, y: H - 6, fill: color}, s.name);
    label.style.fill = color;
    svg.appendChild(label);
    legendX += 14 + 6 * s.name.length;
  });
}
