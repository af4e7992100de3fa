// One building: its units and every device in them, each with its state and a key reading.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr } from "./i18n.js";
import { ago, fieldLabel, formatValue, statusBadge, statusClass } from "./format.js";
import { maintenanceSection } from "./maintenance.js";
import { problemList } from "./problems.js";
import { reportsSection } from "./reports.js";
import { several, siteNameOf, visibleSites } from "./sites.js";

const PRINTERS = new Set(["steward", "dispatcher", "admin"]);

/** The reading a tile shows for each kind (the one a steward asks about first), and its unit. */
const KEY_FIELD = {
  elevator: ["floor", ""], pump: ["discharge_bar", "bar"], gate: ["door_open", ""], lighting: ["commanded_on", ""],
};

function deviceTile(device, nowMs) {
  const [key, unit] = KEY_FIELD[device.kind] ?? [];
  const value = device.values?.[key];
  return el("a", {
    class: `device-tile status-${statusClass(device.status)}`,
    href: `#/devices/${encodeURIComponent(device.id)}`,
    "data-device": device.id,
    "data-status": device.status,
  },
    el("div", { class: "card-head" },
      el("span", { class: "device-name" }, device.name),
      statusBadge(device.status)),
    el("div", { class: "muted" }, tOr(`kind.one.${device.kind}`, device.kind),
      value === undefined ? null : ` · ${fieldLabel(key)}: ${formatValue(key, value, unit)}`),
    el("div", { class: "muted" },
      device.last_seen_ms ? ago(device.last_seen_ms, nowMs) : t("device.never"),
      device.open_work_orders?.length ? ` · ${t("buildings.open_orders", { count: device.open_work_orders.length })}` : null));
}

export class BuildingView {
  constructor({ buildingId }) {
    this.buildingId = buildingId;
    this.reportState = "open";
  }

  title = () => [this.building?.name, this.siteName].filter(Boolean).join(" · ");

  wants = (event) => event.building_id === this.buildingId;

  async load() {
    // Units and their names do not change while the page is open: asked for once.
    this.layout ??= await api.building(this.buildingId);
    // With several sites the page says which estate this is (each may have a "Building 3").
    this.sites ??= await visibleSites().catch(() => []);
    [this.building, this.maintenance, this.reports] = await Promise.all([
      api.buildingStatus(this.buildingId),
      api.buildingMaintenance(this.buildingId).catch((error) => ({ error })),
      api.buildingReports(this.buildingId, { state: this.reportState }).catch((error) => ({ error })),
    ]);
    this.siteName = several(this.sites) ? (this.building.site_name || siteNameOf(this.sites, this.buildingId)) : null;
  }

  draw(ctx) {
    const b = this.building;
    const byId = new Map(b.devices.map((d) => [d.id, d]));
    const now = ctx.nowMs();
    return el("div", { class: "building-detail", "data-building": b.id, "data-status": b.status },
      el("p", {}, el("a", { href: "#/buildings", class: "back" }, `← ${t("building.back")}`)),
      el("div", { class: "page-head" }, el("h2", {}, b.name,
        this.siteName ? el("small", { class: "page-site" }, ` · ${this.siteName}`) : null), statusBadge(b.status),
        ctx.user()?.role === "technician" ? null
          : el("a", { href: `#/buildings/${encodeURIComponent(b.id)}/logbook`, class: "logbook-link" }, t("logbook.link")),
        PRINTERS.has(ctx.user()?.role) ? el("a", { class: "qr-link", href: `#/buildings/${encodeURIComponent(b.id)}/qr` }, t("qr.link")) : null),
      problemList(b.problems),
      reportsSection(this.reports, this.reportState, () => {
        this.reportState = this.reportState === "open" ? "all" : "open";
        ctx.refresh();
      }, ctx),
      this.layout.units.map((unit) =>
        el("section", { class: "unit", "data-unit": unit.id },
          el("h3", {}, unit.name),
          el("div", { class: "device-grid" },
            unit.devices.map((d) => byId.get(d.id)).filter(Boolean).map((d) => deviceTile(d, now))))),
      maintenanceSection(this.maintenance, ctx));
  }
}
