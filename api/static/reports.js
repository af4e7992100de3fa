// A building's residents' reports for its steward: what the resident wrote, the state, the
// photos, and a form to add what the steward learned on the spot (the order's comment).
"use strict";

import { commentForm } from "./actions.js";
import { el } from "./dom.js";
import { dateTime, t, tOr } from "./i18n.js";

function reportItem(report, ctx) {
  const where = [report.unit_name, report.device_name ?? t("reports.whole_building")].filter(Boolean).join(" · ");
  const order = { id: report.work_order_id };
  return el("li", { class: "report", "data-work-order": report.work_order_id, "data-status": report.status },
    el("div", { class: "card-head" },
      el("span", {}, ctx.isMaintenance() ? el("a", { href: `#/orders/${report.work_order_id}` }, `#${report.work_order_id}`) : `#${report.work_order_id}`,
        " ", el("span", { class: "muted" }, `${where} · ${dateTime(report.created_ms)}`)),
      el("span", { class: "badge order-status", "data-status": report.status }, tOr(`order.status.${report.status}`, report.status))),
    el("p", { class: "report-text" }, report.text),
    report.photos.length
      ? el("p", { class: "report-photos" }, report.photos.map((p, i) =>
        el("a", { href: p.url, target: "_blank", rel: "noopener" },
          el("img", { src: p.url, alt: t("reports.photo", { n: i + 1 }), loading: "lazy" }))))
      : null,
    report.notes.length
      ? el("ul", { class: "comments report-notes" }, report.notes.map((n) => el("li", {},
        el("time", {}, dateTime(n.at_ms)), " ", el("b", {}, n.actor), `: ${n.note ?? ""}`)))
      : null,
    ctx.mayComment(order) ? el("details", { class: "report-note", "data-keep": `report-note-${order.id}` },
      el("summary", {}, t("reports.note_add")),
      commentForm((text, sent) => ctx.comment(order, text, sent), `report-${order.id}`)) : null);
}

/** The section, from a `/reports` answer (or `{error}`); `toggle()` switches open / all. */
export function reportsSection(page, state, toggle, ctx) {
  let body;
  if (page.error) body = el("p", { class: "muted" }, t("error.load", { error: page.error.message }));
  else if (!page.items.length) body = el("p", { class: "muted" }, t(state === "open" ? "reports.none" : "reports.none_all"));
  else {
    body = [
      el("ul", { class: "report-list" }, page.items.map((r) => reportItem(r, ctx))),
      page.total > page.items.length ? el("p", { class: "muted" }, t("reports.more", { shown: page.items.length, total: page.total })) : null,
    ];
  }
  return el("section", { class: "reports", "data-state": state },
    el("div", { class: "section-head" },
      el("h3", {}, t("reports.title")),
      el("button", { type: "button", class: "reports-toggle", onclick: toggle }, t(state === "open" ? "reports.show_all" : "reports.show_open"))),
    body);
}
