// One device: its latest readings, charts of its recent history, and what is being done about it.
"use strict";

import { api } from "./api.js";
import { chartBox } from "./chart.js";
import { el } from "./dom.js";
import { dateTime, t, tOr } from "./i18n.js";
import { ago, fieldLabel, formatValue, severityBadge, statusBadge, unitLabel } from "./format.js";
import { maintenanceSection } from "./maintenance.js";
import { several, siteNameOf, visibleSites } from "./sites.js";
import { orderTitle } from "./titles.js";

/** The fields charted per kind: the signals the default rules watch. */
export const CHART_FIELDS = {
  elevator: ["motor_temp_c", "vibration_mm_s", "level_error_mm", "door_reopen_count"],
  pump: ["suction_bar", "discharge_bar", "motor_current_a", "vibration_mm_s", "tank_level_pct"],
  gate: ["door_open", "open_duration_s", "motor_current_a"],
  lighting: ["current_a", "power_w", "lux", "lamp_failures"],
};
const STEP_TYPES = new Set(["bool", "int", "enum"]);
export const RANGES_H = [1, 6, 24];
/** About this many buckets per chart, whatever the range: enough for a 720 px line. */
const BUCKETS_PER_CHART = 240;

/** One titled chart per series of a history answer. */
export function historyCharts(history, { markerMs = null, types = {} }) {
  return history.series.map((s) => el("figure", { class: "chart-figure", "data-field": s.field },
    el("figcaption", {}, fieldLabel(s.field), s.unit ? ` (${unitLabel(s.unit)})` : ""),
    chartBox(s.buckets ?? s.points ?? [], {
      startMs: history.start_ms, endMs: history.end_ms, markerMs,
      unit: unitLabel(s.unit), step: STEP_TYPES.has(types[s.field]),
    })));
}

export class DeviceView {
  constructor({ deviceId }) {
    this.deviceId = deviceId;
    this.rangeH = RANGES_H[0];
  }

  title = () => this.status?.name ?? "";

  wants = (event) => event.device_id === this.deviceId;

  /** Readings change without a status change: the values and charts are re-read this often. */
  refreshMs = 15_000;

  async load(ctx) {
    // What the device is and where it stands do not change while the page is open.
    this.info ??= await api.device(this.deviceId);
    if (this.buildingName === undefined) {
      const [building, sites] = await Promise.all([api.building(this.info.building_id), visibleSites().catch(() => [])]);
      // "Building 3 · Riverside Gardens" when there are several sites (each may have one).
      this.buildingName = several(sites) ? `${building.name} · ${siteNameOf(sites, building.id)}` : building.name;
    }
    const endMs = ctx.nowMs();
    const startMs = endMs - this.rangeH * 3_600_000;
    const intervalS = Math.max(1, Math.round((endMs - startMs) / 1000 / BUCKETS_PER_CHART));
    const fields = (CHART_FIELDS[this.info.kind] ?? []).filter((f) => this.info.fields.some((x) => x.name === f));
    [this.status, this.history, this.maintenance] = await Promise.all([
      api.deviceStatus(this.deviceId),
      api.history(this.deviceId, fields, startMs, endMs, intervalS).catch((error) => ({ error })),
      api.deviceMaintenance(this.deviceId).catch((error) => ({ error })),
    ]);
  }

  historySection(ctx) {
    const range = el("select", {
      "aria-label": t("device.range"),
      onchange: (e) => { this.rangeH = Number(e.target.value); ctx.refresh(); },
    }, RANGES_H.map((h) => el("option", { value: h, selected: h === this.rangeH }, t("device.history", { hours: h }))));
    const types = Object.fromEntries(this.info.fields.map((f) => [f.name, f.type]));
    const body = this.history.error
      ? el("p", { class: "muted" }, t("device.history_error", { error: this.history.error.message }))
      : el("div", { class: "charts" }, historyCharts(this.history, { types }));
    return el("section", {},
      el("div", { class: "section-head" }, el("h3", {}, t("device.history", { hours: this.rangeH })), range),
      body);
  }

  draw(ctx) {
    const d = this.status;
    const now = ctx.nowMs();
    const units = Object.fromEntries(this.info.fields.map((f) => [f.name, f.unit]));
    return el("div", { class: "device-detail", "data-device": d.id, "data-status": d.status },
      el("p", {}, el("a", { href: `#/buildings/${encodeURIComponent(d.building_id)}`, class: "back" },
        `← ${t("device.back", { name: this.buildingName })}`)),
      el("div", { class: "page-head" },
        el("h2", {}, d.name, el("small", {}, ` ${tOr(`kind.one.${d.kind}`, d.kind)}`)),
        statusBadge(d.status)),
      el("p", { class: "muted" }, `${t("device.last_seen")}: `,
        d.last_seen_ms ? `${dateTime(d.last_seen_ms)} (${ago(d.last_seen_ms, now)})` : t("device.never")),
      d.open_work_orders.length ? el("section", { class: "device-orders" },
        el("h3", {}, t("device.open_orders")),
        el("ul", {}, d.open_work_orders.map((o) => el("li", { "data-work-order": o.id },
          severityBadge(o.severity), " ",
          ctx.isMaintenance() ? el("a", { href: `#/orders/${o.id}` }, orderTitle(o)) : orderTitle(o),
          el("span", { class: "muted" }, ` · ${tOr(`order.status.${o.status}`, o.status)}`))))) : null,
      el("section", {},
        el("h3", {}, t("device.values")),
        el("dl", { class: "values" }, Object.entries(d.values ?? {}).map(([name, value]) => [
          el("dt", {}, fieldLabel(name)), el("dd", { "data-field": name }, formatValue(name, value, units[name]))]))),
      this.historySection(ctx),
      maintenanceSection(this.maintenance, ctx));
  }
}
