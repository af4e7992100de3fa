// Maintenance staff's board: active work orders in columns by status, the most urgent on top;
// filters and a text search that also reach finished orders (then a paged list).
"use strict";

import { api } from "./api.js";
import { localId, several, siteNameOf, siteOfId, visibleSites } from "./sites.js";
import { orderTitle } from "./titles.js";
import { el } from "./dom.js";
import { dateTime, duration, t, tOr } from "./i18n.js";
import {
  ACTIONS, ACTIVE_STATUSES, ALL_STATUSES, FINISHED_STATUSES, SEVERITY_ORDER, severityBadge, slaText,
} from "./format.js";

const SORTS = {
  sla: (a, b, now) => slaText(a, now).leftMs - slaText(b, now).leftMs || bySeverity(a, b),
  severity: (a, b, now) => bySeverity(a, b) || slaText(a, now).leftMs - slaText(b, now).leftMs,
  age: (a, b) => startedMs(a) - startedMs(b),
};
const KINDS = ["elevator", "lighting", "gate", "pump"];
/** The status filter's choices: the board's columns, one status, or groups of them. */
const STATUS_CHOICES = { active: ACTIVE_STATUSES, finished: FINISHED_STATUSES, all: ALL_STATUSES };
const PAGE = 500;
const LIST_PAGE = 50;
const DAY_MS = 86_400_000;

function bySeverity(a, b) {
  return SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity);
}

function startedMs(order) {
  return order.fault_started_ms ?? order.created_ms;
}

/** The buttons for an order's allowed next steps the user may take, and assign/take. */
export function actionButtons(order, ctx) {
  const steps = (ACTIONS[order.status] ?? []).filter((to) => ctx.mayStep(order, to));
  const button = (action, label, run) => el("button", {
    type: "button", class: `action action-${action}`, "data-action": action,
    onclick: (event) => {
      event.preventDefault();
      // One change at a time: a double tap must not send it twice.
      for (const b of event.currentTarget.parentElement.querySelectorAll("button")) b.disabled = true;
      run();
    },
  }, label);
  const open = !FINISHED_STATUSES.includes(order.status);
  const assign = open && ctx.mayAssign(order)
    ? button("assign", t(ctx.user()?.role === "technician" ? "order.take" : "order.assign"), () => ctx.assign(order))
    : null;
  if (!steps.length && !assign) return null;
  return el("div", { class: "actions" },
    steps.map((to) => button(to, t(`order.action.${to}`), () => ctx.transition(order, to))), assign);
}

/** What the order is waiting for, or how it ended. */
export function orderState(order) {
  if (order.status === "on_hold" && order.hold_reason) {
    return el("div", { class: "hold" }, t("order.on_hold_because", {
      reason: order.hold_reason, time: order.hold_until_ms ? dateTime(order.hold_until_ms) : "-",
    }));
  }
  if (order.resolution_code) {
    return el("div", { class: "resolution" }, `${t("order.resolution")}: ${tOr(`resolution.${order.resolution_code}`, order.resolution_code)}`);
  }
  return null;
}

function card(order, now, ctx, names) {
  const sla = slaText(order, now);
  return el("article", { class: `order-card severity-${order.severity}`, "data-work-order": order.id, "data-status": order.status },
    el("div", { class: "card-head" }, severityBadge(order.severity),
      FINISHED_STATUSES.includes(order.status) ? el("span", { class: "badge order-status" }, tOr(`order.status.${order.status}`, order.status)) : null,
      el("span", { class: sla.overdue ? "sla overdue" : "sla" }, sla.text)),
    el("a", { href: `#/orders/${order.id}`, class: "order-title" }, `#${order.id} ${orderTitle(order)}`),
    el("div", { class: "muted" }, [names.get(order.building_id) ?? (order.site_name || order.building_id),
      order.device_id === order.building_id ? null : localId(order.device_id)].filter(Boolean).join(" · "),
      ` · ${t("order.since", { time: duration(now - startedMs(order)) })}`),
    el("div", { class: "muted assignee" }, `${t("order.assignee")}: ${order.assignee ?? t("order.unassigned")}`,
      order.team ? ` · ${tOr(`team.${order.team}`, order.team)}` : null),
    orderState(order),
    ctx.mayChange(order) ? actionButtons(order, ctx) : null);
}

/** A date input's day as [start, end) in ms, in the browser's time zone. */
function dayStartMs(value) {
  return value ? new Date(`${value}T00:00`).getTime() : undefined;
}

/** The board's address: `#/orders`, or `#/orders?site=riverside` narrowed to one site. */
export function boardHash(site) {
  return site ? `#/orders?${new URLSearchParams({ site })}` : "#/orders";
}

/** The board's address says the site filter (no hashchange: the page stays as it is), while
 * the board is what the address shows. */
function keepInAddress(site) {
  if (/^#\/orders(\?|$)/.test(location.hash)) history.replaceState(null, "", boardHash(site));
}

export class BoardView {
  /** `query`: the address's (`#/orders?site=…`), for the filters a link or a reload keeps. */
  constructor({ query = new URLSearchParams() } = {}) {
    this.filter = {
      q: "", status: "active", severity: "", building: "", kind: "", assignee: "", from: "", to: "", site: query.get("site") ?? "",
    };
    this.sort = "sla";
    this.offset = 0;
  }

  title = () => t("board.title");

  wants = (event) => event.type === "work_order";

  get columns() {
    return this.filter.status === "active";
  }

  get plain() {
    const f = this.filter;
    return this.columns && !f.q && !f.severity && !f.building && !f.kind && !f.assignee && !f.from && !f.to && !f.site;
  }

  async load(ctx) {
    // Names for the cards and the filters; they do not change while the page is open. With
    // several sites a building's name says its site's too (every site has a "Building 3").
    if (!this.names) {
      const [buildings, sites] = await Promise.all([api.buildings(), visibleSites().catch(() => [])]);
      this.sites = several(sites) ? sites : [];
      this.buildings = buildings.map((b) => ({
        id: b.id, site: b.site_id || null,
        name: this.sites.length ? `${b.site_name || siteNameOf(this.sites, b.id)} · ${b.name}` : b.name,
      }));
      this.names = new Map(this.buildings.map((b) => [b.id, b.name]));
      // An address naming a site this user does not see (or with one site) shows every order.
      if (this.filter.site && !this.sites.some((s) => s.id === this.filter.site)) {
        this.filter.site = "";
        keepInAddress("");
      }
    }
    this.people ??= await api.assignees().catch(() => []);
    const f = this.filter;
    const to = dayStartMs(f.to);
    const page = await api.workOrders({
      status: STATUS_CHOICES[f.status] ?? f.status,
      q: f.q || undefined,
      severity: f.severity || undefined,
      building: f.building || undefined,
      kind: f.kind || undefined,
      assignee: f.assignee || undefined,
      site: f.site || undefined,
      start_ms: dayStartMs(f.from),
      end_ms: to === undefined ? undefined : to + DAY_MS,
      limit: this.columns ? PAGE : LIST_PAGE,
      offset: this.columns ? 0 : this.offset,
    });
    this.orders = page.items;
    this.total = page.total ?? page.items.length;
    // Without filters the board holds every active order: what is new there is news.
    if (this.plain) ctx.announcer?.consider(this.orders);
  }

  set(ctx, name, value) {
    this.filter[name] = value;
    if (name === "site") {
      // A building of another site would leave the board empty; the address keeps the site.
      if (value && this.filter.building && !this.inSite(this.filter.building, value)) this.filter.building = "";
      keepInAddress(value);
    }
    this.offset = 0;
    ctx.refresh();
  }

  inSite(buildingId, site) {
    const building = this.buildings.find((b) => b.id === buildingId);
    return (building?.site ?? siteOfId(buildingId)) === site;
  }

  controls(ctx) {
    const f = this.filter;
    const me = ctx.user()?.username;
    const select = (name, label, options) => el("label", {}, `${label} `,
      el("select", { name, onchange: (e) => this.set(ctx, name, e.target.value) },
        options.map(([v, text]) => el("option", { value: v, selected: v === f[name] }, text))));
    const all = ["", t("board.filter.all")];
    const search = el("input", { type: "search", name: "q", value: f.q, "data-keep": "board-search", maxlength: 200, placeholder: t("board.search"), "aria-label": t("board.search") });
    const date = (name, label) => el("label", {}, `${label} `,
      el("input", { type: "date", name, value: f[name], onchange: (e) => this.set(ctx, name, e.target.value) }));
    return el("div", { class: "filters" },
      select("severity", t("board.filter.severity"), [all, ...SEVERITY_ORDER.map((s) => [s, t(`severity.${s}`)])]),
      this.sites.length ? select("site", t("board.filter.site"), [all, ...this.sites.map((s) => [s.id, s.name])]) : null,
      select("building", t("board.filter.building"), [all,
        ...this.buildings.filter((b) => !f.site || this.inSite(b.id, f.site)).map((b) => [b.id, b.name])]),
      select("kind", t("board.filter.kind"), [all, ...KINDS.map((k) => [k, t(`kind.${k}`)])]),
      select("status", t("board.filter.status"), [
        ...Object.keys(STATUS_CHOICES).map((s) => [s, t(`board.status.${s}`)]),
        ...ALL_STATUSES.map((s) => [s, t(`order.status.${s}`)]),
      ]),
      select("assignee", t("order.assignee"), [all, ...(me ? [[me, t("board.filter.me")]] : []),
        ...this.people.filter((p) => p.username !== me).map((p) => [p.username, p.display_name || p.username])]),
      date("from", t("board.filter.from")),
      date("to", t("board.filter.to")),
      el("form", { class: "search", role: "search", onsubmit: (e) => { e.preventDefault(); this.set(ctx, "q", search.value.trim()); } },
        search, el("button", { type: "submit" }, t("board.search_go"))),
      this.columns ? el("label", {}, `${t("board.sort")} `,
        el("select", { name: "sort", onchange: (e) => { this.sort = e.target.value; ctx.redraw(); } },
          Object.keys(SORTS).map((s) => el("option", { value: s, selected: s === this.sort }, t(`board.sort.${s}`))))) : null);
  }

  list(ctx, now) {
    const last = Math.min(this.offset + this.orders.length, this.total);
    const go = (offset) => { this.offset = Math.max(0, offset); ctx.refresh(); };
    return el("div", { class: "order-list" },
      this.orders.length ? this.orders.map((o) => card(o, now, ctx, this.names)) : el("p", { class: "empty" }, t("empty.orders")),
      el("div", { class: "pager" },
        el("button", { type: "button", class: "page-prev", disabled: this.offset === 0, onclick: () => go(this.offset - LIST_PAGE) }, t("board.previous")),
        el("span", { class: "muted" }, t("board.range", { first: this.total ? this.offset + 1 : 0, last, total: this.total })),
        el("button", { type: "button", class: "page-next", disabled: last >= this.total, onclick: () => go(this.offset + LIST_PAGE) }, t("board.next"))));
  }

  draw(ctx) {
    const now = ctx.nowMs();
    const shown = [...this.orders];
    if (this.columns) shown.sort((a, b) => SORTS[this.sort](a, b, now));
    return el("div", { class: "board-page" },
      el("div", { class: "page-head" }, el("h2", {}, t("board.title")),
        el("span", { class: "muted" }, t("board.count", { count: shown.length }),
          this.columns && this.total > this.orders.length ? ` · ${t("board.more", { total: this.total, limit: PAGE })}` : null)),
      this.controls(ctx),
      this.columns
        ? el("div", { class: "board" }, ACTIVE_STATUSES.map((status) => {
          const orders = shown.filter((o) => o.status === status);
          return el("section", { class: "column", "data-column": status },
            el("h3", {}, tOr(`order.status.${status}`, status), el("span", { class: "count" }, String(orders.length))),
            orders.length ? orders.map((o) => card(o, now, ctx, this.names)) : el("p", { class: "empty" }, t("empty.orders")));
        }))
        : this.list(ctx, now));
  }
}
