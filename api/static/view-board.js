// Maintenance staff's board: active work orders in columns by status, the most urgent on top.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { duration, t, tOr } from "./i18n.js";
import { ACTIONS, ACTIVE_STATUSES, SEVERITY_ORDER, severityBadge, slaText } from "./format.js";

const SORTS = {
  sla: (a, b, now) => slaText(a, now).leftMs - slaText(b, now).leftMs || bySeverity(a, b),
  severity: (a, b, now) => bySeverity(a, b) || slaText(a, now).leftMs - slaText(b, now).leftMs,
  age: (a, b) => startedMs(a) - startedMs(b),
};
const PAGE = 500;

function bySeverity(a, b) {
  return SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity);
}

function startedMs(order) {
  return order.fault_started_ms ?? order.created_ms;
}

/** The buttons for an order's allowed next steps; `run(order, to)` performs one. */
export function actionButtons(order, run) {
  return el("div", { class: "actions" }, (ACTIONS[order.status] ?? []).map((to) =>
    el("button", { type: "button", class: `action action-${to}`, "data-action": to,
      onclick: (event) => {
        event.preventDefault();
        // One change at a time: a double tap must not send the transition twice.
        for (const button of event.currentTarget.parentElement.querySelectorAll("button")) button.disabled = true;
        run(order, to);
      } },
    t(`order.action.${to}`))));
}

function card(order, now, run, names) {
  const sla = slaText(order, now);
  return el("article", { class: `order-card severity-${order.severity}`, "data-work-order": order.id, "data-status": order.status },
    el("div", { class: "card-head" }, severityBadge(order.severity),
      el("span", { class: sla.overdue ? "sla overdue" : "sla" }, sla.text)),
    el("a", { href: `#/orders/${order.id}`, class: "order-title" }, `#${order.id} ${order.title}`),
    el("div", { class: "muted" }, [names.get(order.building_id) ?? order.building_id, order.device_id].filter(Boolean).join(" · "),
      ` · ${t("order.since", { time: duration(now - startedMs(order)) })}`),
    order.assignee ? el("div", { class: "muted" }, `${t("order.assignee")}: ${order.assignee}`) : null,
    run ? actionButtons(order, run) : null);
}

export class BoardView {
  constructor() {
    this.severity = "";
    this.building = "";
    this.sort = "sla";
  }

  title = () => t("board.title");

  wants = (event) => event.type === "work_order";

  async load() {
    // Building names for the cards and the filter; they do not change while the page is open.
    this.names ??= new Map((await api.buildings()).map((b) => [b.id, b.name]));
    const page = await api.workOrders({
      status: ACTIVE_STATUSES, limit: PAGE, building: this.building || undefined, severity: this.severity || undefined,
    });
    this.orders = page.items;
    this.total = page.total ?? page.items.length;
  }

  controls(ctx) {
    const buildings = [...this.names];
    const select = (label, value, options, set) => el("label", {}, `${label} `,
      el("select", { onchange: (e) => { set(e.target.value); ctx.refresh(); } },
        options.map(([v, text]) => el("option", { value: v, selected: v === value }, text))));
    return el("div", { class: "filters" },
      select(t("board.filter.severity"), this.severity,
        [["", t("board.filter.all")], ...SEVERITY_ORDER.map((s) => [s, t(`severity.${s}`)])], (v) => { this.severity = v; }),
      select(t("board.filter.building"), this.building,
        [["", t("board.filter.all")], ...buildings], (v) => { this.building = v; }),
      select(t("board.sort"), this.sort,
        Object.keys(SORTS).map((s) => [s, t(`board.sort.${s}`)]), (v) => { this.sort = v; }));
  }

  draw(ctx) {
    const now = ctx.nowMs();
    const shown = [...this.orders];
    shown.sort((a, b) => SORTS[this.sort](a, b, now));
    return el("div", { class: "board-page" },
      el("div", { class: "page-head" }, el("h2", {}, t("board.title")),
        el("span", { class: "muted" }, t("board.count", { count: shown.length }),
          this.total > this.orders.length ? ` · ${t("board.more", { total: this.total, limit: PAGE })}` : null)),
      this.controls(ctx),
      el("div", { class: "board" }, ACTIVE_STATUSES.map((status) => {
        const orders = shown.filter((o) => o.status === status);
        return el("section", { class: "column", "data-column": status },
          el("h3", {}, tOr(`order.status.${status}`, status), el("span", { class: "count" }, String(orders.length))),
          orders.length ? orders.map((o) => card(o, now, ctx.mayChange(o) ? ctx.transition : null, this.names)) : el("p", { class: "empty" }, t("empty.orders")));
      })));
  }
}
