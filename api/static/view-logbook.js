// A building's compliance logbook: every device's maintenance plans, when each was last done and
// what shows it (a reading, or a technician's resolved order), when it is next due, and whether
// it is done, due or overdue (GET /buildings/{id}/compliance, docs/maintenance.md).
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { dateTime, duration, t, tOr } from "./i18n.js";
import { fieldLabel, formatValue } from "./format.js";
import { siteLabel } from "./sites.js";

const STATUS_CLASS = { done: "ok", due: "warning", overdue: "alarm" };
const STATUS_RANK = { overdue: 0, due: 1, done: 2 };

function statusBadge(status) {
  return el("span", { class: `badge status-${STATUS_CLASS[status] ?? "unknown"}`, "data-status": status },
    t(`logbook.status.${status}`));
}

function evidenceText(e, ctx) {
  if (e.evidence === "telemetry") {
    const value = formatValue(e.field, e.field?.endsWith("_ok") ? e.value === 1 : e.value, "");
    return t("logbook.telemetry", { field: fieldLabel(e.field), value });
  }
  const order = `#${e.work_order_id}`;
  return [
    ctx.isMaintenance() ? el("a", { href: `#/orders/${e.work_order_id}` }, order) : order,
    " ", t("logbook.record", { by: e.by || "–", code: tOr(`resolution.${e.code}`, e.code ?? "") }),
  ];
}

function dueText(row, nowMs) {
  const left = row.next_due_ms - nowMs;
  return [dateTime(row.next_due_ms), el("span", { class: "muted" },
    ` · ${left >= 0 ? t("logbook.due_in", { time: duration(left) }) : t("logbook.late_by", { time: duration(-left) })}`)];
}

function rowOf(row, ctx, nowMs) {
  const last = row.last_done;
  return el("tr", { class: "logbook-row", "data-device": row.device_id, "data-plan": row.plan.id, "data-status": row.status },
    el("td", {}, el("a", { href: `#/devices/${encodeURIComponent(row.device_id)}` }, row.device_name),
      el("div", { class: "muted" }, row.unit_id)),
    el("td", {}, tOr(`plan.${row.plan.id}`, row.plan.title),
      el("div", { class: "muted" }, t("logbook.every", { time: duration(row.plan.every_s * 1000) }))),
    el("td", {}, statusBadge(row.status)),
    el("td", { class: "logbook-last" }, last
      ? [dateTime(last.done_ms), el("div", { class: "muted logbook-evidence", "data-evidence": last.evidence }, evidenceText(last, ctx))]
      : el("span", { class: "muted" }, t("logbook.never"))),
    el("td", {}, dueText(row, nowMs),
      row.open_work_order_id === null ? null : el("div", {}, ctx.isMaintenance()
        ? el("a", { href: `#/orders/${row.open_work_order_id}`, "data-open-order": row.open_work_order_id },
          t("logbook.open_order", { id: row.open_work_order_id }))
        : el("span", { "data-open-order": row.open_work_order_id }, t("logbook.open_order", { id: row.open_work_order_id })))));
}

export class LogbookView {
  constructor({ buildingId }) {
    this.buildingId = buildingId;
  }

  title = () => (this.building ? t("logbook.title", { building: this.name() }) : "");

  /** "Building 3", or "Building 3 · Riverside Gardens" when there are several sites. */
  name() {
    return [this.building.name, this.siteName].filter(Boolean).join(" · ");
  }

  wants = (event) => event.building_id === this.buildingId;

  async load() {
    this.building ??= await api.building(this.buildingId);
    this.siteName ??= await siteLabel(this.buildingId);
    this.logbook = await api.buildingCompliance(this.buildingId);
  }

  draw(ctx) {
    const book = this.logbook;
    const now = ctx.nowMs();
    const rows = [...book.rows].sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || a.next_due_ms - b.next_due_ms);
    return el("div", { class: "logbook", "data-building": this.buildingId },
      el("p", {}, el("a", { href: `#/buildings/${encodeURIComponent(this.buildingId)}`, class: "back" }, `← ${t("logbook.back")}`)),
      el("div", { class: "page-head" }, el("h2", {}, t("logbook.title", { building: this.name() }))),
      el("p", { class: "muted logbook-summary" }, t("logbook.summary", book.counts)),
      rows.length
        ? el("div", { class: "table-wrap" }, el("table", { class: "logbook-table" },
          el("thead", {}, el("tr", {},
            ["logbook.device", "logbook.plan", "logbook.status", "logbook.last_done", "logbook.next_due"].map((k) => el("th", {}, t(k))))),
          el("tbody", {}, rows.map((r) => rowOf(r, ctx, now)))))
        : el("p", { class: "muted" }, t("logbook.empty")));
  }
}
