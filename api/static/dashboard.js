// Polls the API and redraws the building grid and the open work orders.
"use strict";

const REFRESH_MS = 2000;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function buildingCard(status) {
  const devices = el("div", { class: "devices" });
  for (const d of status.devices) {
    devices.append(el("span", { class: `dev ${d.status}`, title: `${d.name} (${d.kind}): ${d.status}`, "data-device": d.id }));
  }
  return el("article", { class: `building ${status.status}`, "data-building": status.id, "data-status": status.status },
    el("h3", {}, status.name, el("span", { class: `badge ${status.status}` }, status.status)),
    devices);
}

async function refreshBuildings() {
  const summaries = await getJson("/api/v1/buildings");
  const statuses = await Promise.all(summaries.map((b) => getJson(`/api/v1/buildings/${encodeURIComponent(b.id)}/status`)));
  document.getElementById("buildings").replaceChildren(...statuses.map(buildingCard));
}

async function refreshWorkOrders() {
  const page = await getJson("/api/v1/work-orders?status=open&status=acknowledged&status=in_progress&status=on_hold");
  const rows = page.items.map((o) => el("tr", { "data-work-order": o.id },
    el("td", {}, String(o.id)),
    el("td", {}, el("span", { class: `badge ${o.severity}` }, o.severity)),
    el("td", {}, o.title),
    el("td", {}, o.building_id),
    el("td", {}, o.device_id || ""),
    el("td", {}, new Date(o.fault_started_ms || o.created_ms).toLocaleTimeString()),
    el("td", {}, o.status)));
  document.querySelector("#work-orders tbody").replaceChildren(...rows);
}

async function refresh() {
  try {
    await Promise.all([refreshBuildings(), refreshWorkOrders()]);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    document.getElementById("updated").textContent = `update failed: ${error.message}`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
