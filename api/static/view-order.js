// One work order: what broke, its deadlines, the buttons, the trend before the fault, its history.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { dateTime, t, tOr } from "./i18n.js";
import { severityBadge, slaText } from "./format.js";
import { actionButtons } from "./view-board.js";
import { CHART_FIELDS, historyCharts } from "./view-device.js";

function eventText(event) {
  const status = (s) => tOr(`order.status.${s}`, s ?? "");
  if (event.event === "transition") return t("event.transition", { from: status(event.from_status), to: status(event.to_status) });
  if (event.event === "assigned") return t("event.assigned", { to: event.note ?? "" });
  return tOr(`event.${event.event}`, event.event);
}

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

export class OrderView {
  constructor({ orderId }) {
    this.orderId = orderId;
  }

  title = () => (this.order ? `#${this.order.id} ${this.order.title}` : "");

  async load() {
    this.order = await api.workOrder(this.orderId);
    // Names for the ids, asked for once: they do not change while the page is open.
    this.building ??= await api.building(this.order.building_id);
  }

  /** "Building 3 Unit 1 · Elevator 2" for the order's device (or its unit). */
  where() {
    const o = this.order;
    const unit = this.building.units.find((u) => u.id === o.unit_id);
    const device = unit?.devices.find((d) => d.id === o.device_id);
    return [unit?.name, device?.name].filter(Boolean).join(" · ") || null;
  }

  draw(ctx) {
    const o = this.order;
    const now = ctx.nowMs();
    const sla = slaText(o, now);
    const time = (ms) => (ms ? dateTime(ms) : null);
    return el("div", { class: "order-detail", "data-work-order": o.id, "data-status": o.status },
      el("p", {}, el("a", { href: "#/orders", class: "back" }, `← ${t("order.back")}`)),
      el("div", { class: "page-head" },
        el("h2", {}, `#${o.id} ${o.title}`),
        severityBadge(o.severity),
        el("span", { class: "badge order-status", "data-status": o.status }, tOr(`order.status.${o.status}`, o.status))),
      el("p", { class: sla.overdue ? "sla overdue" : "sla" }, sla.text),
      ctx.mayChange(o) ? actionButtons(o, ctx.transition) : null,
      el("dl", { class: "facts" },
        row(t("order.building"), this.building.name),
        row(t("order.device"), this.where()),
        row(t("order.category"), tOr(`order.category.${o.category}`, o.category)),
        row(t("order.fault_started"), time(o.fault_started_ms)),
        row(t("order.detected"), time(o.detected_ms)),
        row(t("order.cleared"), time(o.cleared_ms)),
        row(t("sla.respond"), time(o.respond_by_ms)),
        row(t("sla.resolve"), time(o.resolve_by_ms)),
        row(t("order.team"), o.team),
        row(t("order.assignee"), o.assignee ?? t("order.unassigned"))),
      el("section", { class: "trend" },
        el("h3", {}, t("order.trend")),
        o.trend
          ? el("div", { class: "charts" }, historyCharts({ ...o.trend, series: movingSeries(o.trend, o.kind) }, { markerMs: o.fault_started_ms }))
          : el("p", { class: "muted" }, t("order.trend_none"))),
      el("section", {},
        el("h3", {}, t("order.history")),
        el("ol", { class: "history" }, (o.history ?? []).map((e) => el("li", { "data-event": e.event },
          el("time", {}, dateTime(e.at_ms)), " ", el("b", {}, eventText(e)),
          el("span", { class: "muted" }, ` · ${e.actor}`), e.note && e.event !== "assigned" ? ` — ${e.note}` : null)))),
      el("section", {},
        el("h3", {}, t("order.comments")),
        o.comments?.length
          ? el("ul", { class: "comments" }, o.comments.map((c) => el("li", {},
            el("time", {}, dateTime(c.at_ms)), " ", el("b", {}, c.actor), `: ${c.note ?? ""}`)))
          : el("p", { class: "muted" }, t("order.no_comments"))));
  }
}
