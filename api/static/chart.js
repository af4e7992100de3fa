// A time-series line chart drawn as SVG: enough for a device's recent history, no library needed.
"use strict";

import { language, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const PAD = { left: 48, right: 12, top: 10, bottom: 22 };
const HEIGHT_PX = 150;

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** Points [ts_ms, value] or buckets {start_ms, mean, min, max} as parallel arrays. */
export function normalise(series) {
  const ts = [];
  const mean = [];
  const lo = [];
  const hi = [];
  for (const p of series) {
    const time = Array.isArray(p) ? p[0] : p.start_ms;
    const value = Array.isArray(p) ? p[1] : p.mean;
    if (!Number.isFinite(time) || !Number.isFinite(value)) continue;
    ts.push(time);
    mean.push(value);
    lo.push(Number.isFinite(p.min) ? p.min : value);
    hi.push(Number.isFinite(p.max) ? p.max : value);
  }
  return { ts, mean, lo, hi };
}

/** About `count` round values spanning [min, max] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(min, max, count = 4) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const TIME_STEPS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * 60_000);

function timeTicks(startMs, endMs, count = 5) {
  const step = TIME_STEPS_MS.find((s) => s >= (endMs - startMs) / count) ?? TIME_STEPS_MS.at(-1);
  const offsetMs = new Date(startMs).getTimezoneOffset() * 60_000;
  const ticks = [];
  for (let v = Math.ceil((startMs - offsetMs) / step) * step + offsetMs; v <= endMs; v += step) ticks.push(v);
  return ticks;
}

function shortTime(ms) {
  return new Date(ms).toLocaleTimeString(language(), { hour: "2-digit", minute: "2-digit" });
}

/** A value with as many decimals as `step` (the tick spacing, or a tenth of it) asks for. */
function formatValue(value, unit, step) {
  const digits = Math.min(3, Math.max(0, -Math.floor(Math.log10(step))));
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ""}`;
}

/** Index of the last timestamp <= time (binary search; ts is sorted). */
function nearest(ts, time) {
  let lo = 0;
  let hi = ts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ts[mid] <= time) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * An SVG chart of `series` over [startMs, endMs].
 * Options: unit, step (draw booleans and counters as steps), markerMs (a vertical line, e.g. the
 * fault's start), widthPx (the container's width; the chart is drawn at that size so text stays
 * readable on a phone).
 */
export function lineChart(series, { startMs, endMs, unit = "", step = false, markerMs = null, widthPx = 600 }) {
  const { ts, mean, lo, hi } = normalise(series);
  const width = Math.max(240, Math.round(widthPx));
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT_PX - PAD.top - PAD.bottom;
  const root = svg("svg", {
    class: "chart",
    width,
    height: HEIGHT_PX,
    viewBox: `0 0 ${width} ${HEIGHT_PX}`,
    role: "img",
  });
  if (ts.length === 0) {
    root.append(svg("text", { x: width / 2, y: HEIGHT_PX / 2, "text-anchor": "middle", class: "chart-empty" }, t("device.no_history")));
    return root;
  }
  let yMin = Math.min(...lo);
  let yMax = Math.max(...hi);
  if (yMax - yMin < 1e-9) {
    yMin -= 1;
    yMax += 1;
  }
  const margin = (yMax - yMin) * 0.08;
  yMin -= margin;
  yMax += margin;
  const x = (time) => PAD.left + ((time - startMs) / (endMs - startMs)) * plotW;
  const y = (value) => PAD.top + (1 - (value - yMin) / (yMax - yMin)) * plotH;

  const grid = svg("g", { class: "chart-grid" });
  const yTicks = niceTicks(yMin, yMax);
  const yStep = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  for (const v of yTicks) {
    grid.append(svg("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v) }));
    grid.append(svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end" }, formatValue(v, "", yStep)));
  }
  for (const time of timeTicks(startMs, endMs, Math.max(2, Math.floor(plotW / 90)))) {
    grid.append(svg("line", { x1: x(time), x2: x(time), y1: PAD.top, y2: PAD.top + plotH }));
    grid.append(svg("text", { x: x(time), y: HEIGHT_PX - 6, "text-anchor": "middle" }, shortTime(time)));
  }
  root.append(grid);

  if (hi.some((v, i) => v !== lo[i])) {
    const upper = ts.map((time, i) => `${x(time).toFixed(1)},${y(hi[i]).toFixed(1)}`);
    const lower = ts.map((time, i) => `${x(time).toFixed(1)},${y(lo[i]).toFixed(1)}`).reverse();
    root.append(svg("polygon", { class: "chart-band", points: [...upper, ...lower].join(" ") }));
  }
  const path = [];
  ts.forEach((time, i) => {
    const px = x(time).toFixed(1);
    const py = y(mean[i]).toFixed(1);
    if (i === 0) path.push(`M${px},${py}`);
    else if (step) path.push(`H${px}V${py}`);
    else path.push(`L${px},${py}`);
  });
  root.append(svg("path", { class: "chart-line", d: path.join("") }));

  if (markerMs !== null && markerMs >= startMs && markerMs <= endMs) {
    root.append(svg("line", { class: "chart-marker", x1: x(markerMs), x2: x(markerMs), y1: PAD.top, y2: PAD.top + plotH }));
  }

  const cursor = svg("line", { class: "chart-cursor", y1: PAD.top, y2: PAD.top + plotH, visibility: "hidden" });
  const readout = svg("text", { class: "chart-readout", x: width - PAD.right, y: PAD.top + 10, "text-anchor": "end" });
  root.append(cursor, readout);
  root.addEventListener("pointermove", (event) => {
    const box = root.getBoundingClientRect();
    const time = startMs + ((event.clientX - box.left - PAD.left) / plotW) * (endMs - startMs);
    const i = nearest(ts, time);
    cursor.setAttribute("x1", x(ts[i]));
    cursor.setAttribute("x2", x(ts[i]));
    cursor.setAttribute("visibility", "visible");
    readout.textContent = `${shortTime(ts[i])}  ${formatValue(mean[i], unit, yStep / 10)}`;
  });
  root.addEventListener("pointerleave", () => {
    cursor.setAttribute("visibility", "hidden");
    readout.textContent = "";
  });
  return root;
}

/**
 * A box that draws `lineChart(series, options)` at its own width, and again when that width
 * changes (a phone turned sideways), so the text stays at its real size on every screen.
 */
export function chartBox(series, options) {
  const box = document.createElement("div");
  box.className = "chart-box";
  let drawnWidth = 0;
  const observer = new ResizeObserver(() => {
    if (!box.isConnected) {
      observer.disconnect();
      return;
    }
    const width = Math.floor(box.clientWidth);
    if (width > 0 && width !== drawnWidth) {
      drawnWidth = width;
      box.replaceChildren(lineChart(series, { ...options, widthPx: width }));
    }
  });
  observer.observe(box);
  return box;
}
