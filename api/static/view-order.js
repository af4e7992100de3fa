// One work order: what broke, its deadlines, the buttons, the trend before the fault, its history.
"use strict";

import { commentForm } from "./actions.js";
import { api } from "./api.js";
import { el } from "./dom.js";
import { dateTime, duration, t, tOr } from "./i18n.js";
import { eventDetail, eventText, severityBadge, slaText } from "./format.js";
import { defaultSpanH } from "./trend-span.js";
import { actionButtons, orderState } from "./view-board.js";
import { CHART_FIELDS, historyCharts } from "./view-device.js";
import { photoSection } from "./photos.js";
import { several, siteNameOf, visibleSites } from "./sites.js";
import { orderTitle } from "./titles.js";

/** The trend's series worth a look: those that moved, the kind's usual signals first. */
export function movingSeries(trend, kind) {
  const first = CHART_FIELDS[kind] ?? [];
  const moved = trend.series.filter((s) => {
    const values = (s.buckets ?? []).flatMap((b) => [b.min, b.max]);
    return values.length > 0 && Math.max(...values) > Math.min(...values);
  });
  const rank = (s) => (first.includes(s.field) ? first.indexOf(s.field) : first.length);
  return (moved.length ? moved : trend.series.filter((s) => first.includes(s.field))).sort((a, b) => rank(a) - rank(b));
}

function row(label, value) {
  return value === null || value === undefined ? null : [el("dt", {}, label), el("dd", {}, value)];
}

/** The trend's windows: the order's own 24 h in 5-minute buckets, or the last hour closer up;
 * it opens on the smallest that holds the device's readings before the fault. */
const TREND_WINDOWS_H = [24, 1];
const CLOSE_UP_INTERVAL_S = 15;
const CLOSE_UP_AFTER_MS = 15 * 60_000;
const MAX_HISTORY_FIELDS = 8;

export class OrderView {
  constructor({ orderId }) {
    this.orderId = orderId;
    this.windowH = null; // chosen at the first load, from the readings there are
  }

  title = () => (this.order ? `#${this.order.id} ${orderTitle(this.order)}` : "");

  wants = (event) => event.type === "work_order" && event.work_order_id === this.orderId;

  async load() {
    this.order = await api.workOrder(this.orderId);
    this.photos = this.order.source === "report" ? await api.orderPhotos(this.orderId).catch(() => []) : [];
    // Names for the ids, asked for once: they do not change while the page is open.
    // An order of a whole site (no device reports: "site silent") is filed on the site's id,
    // which is no building: the page then names the site only.
    this.building ??= await api.building(this.order.building_id).catch((error) => {
      if (error.status === 404) return { id: null, name: null, units: [] };
      throw error;
    });
    this.sites ??= await visibleSites().catch(() => []);
    this.trend = this.order.trend && { ...this.order.trend, series: movingSeries(this.order.trend, this.order.kind) };
    this.windowH ??= defaultSpanH(this.order.trend, this.order.fault_started_ms, TREND_WINDOWS_H);
    if (this.trend && this.windowH !== TREND_WINDOWS_H[0]) this.trend = await this.closeUp(this.trend);
  }

  /** The same signals over the last `windowH` hours before the fault, in 15 s buckets. */
  closeUp(trend) {
    const faultMs = this.order.fault_started_ms;
    const fields = trend.series.map((s) => s.field).slice(0, MAX_HISTORY_FIELDS);
    return api.history(this.order.device_id, fields, faultMs - this.windowH * 3_600_000, faultMs + CLOSE_UP_AFTER_MS, CLOSE_UP_INTERVAL_S)
      .catch((error) => ({ error }));
  }

  trendSection(ctx) {
    const o = this.order;
    const choice = el("select", {
      "aria-label": t("device.range"),
      onchange: (e) => { this.windowH = Number(e.target.value); ctx.refresh(); },
    }, TREND_WINDOWS_H.map((h) => el("option", { value: h, selected: h === this.windowH }, t("order.trend_window", { hours: h }))));
    let body;
    if (!this.trend) body = el("p", { class: "muted" }, t("order.trend_none"));
    else if (this.trend.error) body = el("p", { class: "muted" }, t("device.history_error", { error: this.trend.error.message }));
    else body = el("div", { class: "charts" }, historyCharts(this.trend, { markerMs: o.fault_started_ms }));
    return el("section", { class: "trend" },
      el("div", { class: "section-head" }, el("h3", {}, t("order.trend")), this.order.trend ? choice : null),
      body);
  }

  /** "Building 3 Unit 1 · Elevator 2" for the order's device (or its unit), the device's page
   * linked. */
  where() {
    const o = this.order;
    const unit = this.building.units.find((u) => u.id === o.unit_id);
    const device = unit?.devices.find((d) => d.id === o.device_id);
    const text = [unit?.name, device?.name].filter(Boolean).join(" · ");
    if (!text) return null;
    return device ? el("a", { href: `#/devices/${encodeURIComponent(device.id)}`, class: "order-device" }, text) : text;
  }

  draw(ctx) {
    const o = this.order;
    const now = ctx.nowMs();
    const sla = slaText(o, now);
    const time = (ms) => (ms ? dateTime(ms) : null);
    const took = (s) => (s === null || s === undefined ? null : duration(s * 1000));
    return el("div", { class: "order-detail", "data-work-order": o.id, "data-status": o.status },
      el("p", {}, el("a", { href: "#/orders", class: "back" }, `← ${t("order.back")}`)),
      el("div", { class: "page-head" },
        el("h2", {}, `#${o.id} ${orderTitle(o)}`),
        severityBadge(o.severity),
        el("span", { class: "badge order-status", "data-status": o.status }, tOr(`order.status.${o.status}`, o.status))),
      el("p", { class: sla.overdue ? "sla overdue" : "sla" }, sla.text),
      orderState(o),
      o.fault_active ? el("p", { class: "fault-active" }, t("order.fault_active")) : null,
      ctx.mayChange(o) ? actionButtons(o, ctx) : null,
      el("dl", { class: "facts" },
        several(this.sites) || !this.building.id ? row(t("order.site"), o.site_name || siteNameOf(this.sites, o.building_id)) : null,
        this.building.id
          ? row(t("order.building"), el("a", { href: `#/buildings/${encodeURIComponent(this.building.id)}`, class: "order-building" }, this.building.name))
          : null,
        row(t("order.device"), this.where()),
        row(t("order.category"), tOr(`order.category.${o.category}`, o.category)),
        row(t("order.fault_started"), time(o.fault_started_ms)),
        row(t("order.detected"), time(o.detected_ms)),
        row(t("order.cleared"), time(o.cleared_ms)),
        row(t("sla.respond"), time(o.respond_by_ms)),
        row(t("sla.resolve"), time(o.resolve_by_ms)),
        row(t("order.time_to_respond"), took(o.time_to_respond_s)),
        row(t("order.time_to_repair"), took(o.time_to_repair_s)),
        row(t("order.team"), o.team ? tOr(`team.${o.team}`, o.team) : null),
        row(t("order.assignee"), o.assignee ?? t("order.unassigned"))),
      photoSection(this.photos),
      this.trendSection(ctx),
      el("section", {},
        el("h3", {}, t("order.history")),
        el("ol", { class: "history" }, (o.history ?? []).map((e) => el("li", { "data-event": e.event },
          el("time", {}, dateTime(e.at_ms)), " ", el("b", {}, eventText(e)),
          el("span", { class: "muted" }, ` · ${e.actor}`), eventDetail(e))))),
      el("section", {},
        el("h3", {}, t("order.comments")),
        o.comments?.length
          ? el("ul", { class: "comments" }, o.comments.map((c) => el("li", {},
            el("time", {}, dateTime(c.at_ms)), " ", el("b", {}, c.actor), `: ${c.note ?? ""}`)))
          : el("p", { class: "muted" }, t("order.no_comments")),
        ctx.mayComment(o) ? commentForm((text, sent) => ctx.comment(o, text, sent), `order-${o.id}`) : null));
  }
}
