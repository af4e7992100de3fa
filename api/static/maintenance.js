// A device's or building's maintenance history: its orders (finished ones too), its faults,
// how long responding and repairing took, and who did what on each order.
"use strict";

import { el } from "./dom.js";
import { dateTime, duration, t, tOr } from "./i18n.js";
import { eventDetail, eventText, severityBadge } from "./format.js";
import { orderTitle } from "./titles.js";

const took = (s) => (s === null || s === undefined ? "–" : duration(s * 1000));

function orderItem(order, ctx) {
  const title = `#${order.id} ${orderTitle(order)}`;
  return el("li", { class: "maintenance-order", "data-work-order": order.id, "data-status": order.status },
    el("div", { class: "card-head" },
      el("span", {}, severityBadge(order.severity), " ",
        ctx.isMaintenance() ? el("a", { href: `#/orders/${order.id}` }, title) : title),
      el("span", { class: "badge order-status" }, tOr(`order.status.${order.status}`, order.status))),
    el("div", { class: "muted" }, dateTime(order.created_ms),
      ` · ${t("order.time_to_respond")}: ${took(order.time_to_respond_s)}`,
      ` · ${t("order.time_to_repair")}: ${took(order.time_to_repair_s)}`,
      order.resolution_code ? ` · ${tOr(`resolution.${order.resolution_code}`, order.resolution_code)}` : null),
    el("details", { class: "actions-log" },
      el("summary", {}, t("maintenance.actions", { count: order.actions.length })),
      el("ol", { class: "history" }, order.actions.map((e) => el("li", { "data-event": e.event },
        el("time", {}, dateTime(e.at_ms)), " ", el("b", {}, eventText(e)),
        el("span", { class: "muted" }, ` · ${e.actor}`), eventDetail(e))))));
}

/** The section, from a `/maintenance` answer (or `{error}` when it could not be read). */
export function maintenanceSection(history, ctx) {
  let body;
  if (history.error) body = el("p", { class: "muted" }, t("error.load", { error: history.error.message }));
  else if (!history.items.length) body = el("p", { class: "muted" }, t("maintenance.none"));
  else {
    body = [
      el("p", { class: "muted maintenance-summary" }, t("maintenance.summary", {
        orders: history.orders, faults: history.faults,
        respond: took(history.mean_time_to_respond_s), repair: took(history.mean_time_to_repair_s),
      })),
      el("ul", { class: "maintenance-list" }, history.items.map((o) => orderItem(o, ctx))),
      history.orders > history.items.length ? el("p", { class: "muted" }, t("maintenance.more", { shown: history.items.length })) : null,
    ];
  }
  return el("section", { class: "maintenance" }, el("h3", {}, t("maintenance.title")), body);
}
