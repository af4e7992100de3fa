// The steward's first page: their buildings as tiles coloured by the worst device state. With
// several sites (a portfolio: the dispatch desk), the sites come first, worst first, each with
// its buildings worst first.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { STATUS_ORDER, statusBadge, statusClass } from "./format.js";
import { problemList } from "./problems.js";
import { boardHash } from "./view-board.js";
import { buildingSite, several, statusRank, visibleSites, worstFirst, worstStatus } from "./sites.js";

const KIND_ORDER = ["elevator", "pump", "gate", "lighting"];

function worst(byStatus) {
  return STATUS_ORDER.filter((s) => byStatus[s] > 0).at(-1) ?? "unknown";
}

function kindChip(kind, byStatus) {
  const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
  const bad = total - (byStatus.ok ?? 0);
  const state = worst(byStatus);
  return el("li", { class: `kind-chip status-${statusClass(state)}`, "data-kind": kind },
    el("span", {}, t(`kind.${kind}`)),
    el("b", {}, bad > 0 ? `${total - bad}/${total}` : String(total)));
}

/** A building's tile; `siteName` (with several sites) says which estate it is in. */
export function buildingCard(building, siteName = null) {
  const kinds = KIND_ORDER.filter((k) => building.counts[k]);
  return el("a", {
    class: `building-card status-${statusClass(building.status)}`,
    href: `#/buildings/${encodeURIComponent(building.id)}`,
    "data-building": building.id,
    "data-status": building.status,
  },
    siteName ? el("div", { class: "card-site muted" }, siteName) : null,
    el("div", { class: "card-head" }, el("h3", {}, building.name), statusBadge(building.status)),
    el("ul", { class: "kind-chips" }, kinds.map((k) => kindChip(k, building.counts[k]))),
    problemList(building.problems),
    building.open_reports > 0 ? el("p", { class: "card-reports" }, t("buildings.reports", { count: building.open_reports })) : null,
    building.open_work_orders > 0
      ? el("p", { class: "card-foot" }, t("buildings.open_orders", { count: building.open_work_orders }))
      : null);
}

/** How many of a site's buildings are in each status, worst first: "1 Fault · 3 OK". */
function statusCounts(buildings) {
  const counts = new Map();
  for (const b of buildings) counts.set(b.status, (counts.get(b.status) ?? 0) + 1);
  return el("ul", { class: "kind-chips site-counts" },
    worstFirst([...counts.keys()], (s) => s).map((status) =>
      el("li", { class: `kind-chip status-${statusClass(status)}`, "data-status": status },
        el("span", {}, t(`status.${status}`)), el("b", {}, String(counts.get(status))))));
}

/** One site: its name, worst status, buildings by status, open orders, then its tiles. */
function siteSection(site, buildings, ctx) {
  const status = worstStatus(buildings.map((b) => b.status));
  const open = site.open_work_orders ?? buildings.reduce((sum, b) => sum + (b.open_work_orders ?? 0), 0);
  const openText = t("buildings.open_orders", { count: open });
  return el("section", { class: `site-group status-${statusClass(status)}`, "data-site": site.id, "data-status": status },
    el("div", { class: "site-head" },
      el("h3", {}, site.name), statusBadge(status),
      el("span", { class: "muted" }, t("portfolio.buildings", { count: buildings.length })),
      statusCounts(buildings),
      open > 0 && ctx.isMaintenance()
        ? el("a", { class: "site-orders", href: boardHash(site.id) }, openText)
        : el("span", { class: open > 0 ? "site-orders" : "site-orders muted" }, openText)),
    el("div", { class: "building-grid" }, worstFirst(buildings).map((b) => buildingCard(b, site.name))));
}

export class BuildingsView {
  title = () => t(several(this.sites) ? "portfolio.title" : "buildings.title");

  wants = (event) => event.type === "building_status" || event.type === "work_order";

  async load() {
    // The sites' open orders change with the buildings': both are read again each time.
    [this.sites, this.buildings] = await Promise.all([visibleSites({ fresh: true }), api.buildings()]);
  }

  draw(ctx) {
    if (this.buildings.length === 0) return el("p", { class: "empty" }, t("empty.buildings"));
    if (!several(this.sites)) {
      return el("div", { class: "building-grid", "aria-live": "polite" }, this.buildings.map((b) => buildingCard(b)));
    }
    const bySite = new Map(this.sites.map((s) => [s.id, []]));
    for (const b of this.buildings) {
      const id = buildingSite(b);
      if (!bySite.has(id)) bySite.set(id, []);
      bySite.get(id).push(b);
    }
    // A building of a site the list does not name (it changed meanwhile) still shows.
    const sites = [...bySite.keys()].filter((id) => bySite.get(id).length)
      .map((id) => this.sites.find((s) => s.id === id) ?? { id, name: this.buildings.find((b) => buildingSite(b) === id).site_name || id });
    const worst = (site) => worstStatus(bySite.get(site.id).map((b) => b.status));
    // Worst site first (then as the server lists them: by name).
    const ordered = [...sites].sort((a, b) => statusRank(worst(b)) - statusRank(worst(a)));
    return el("div", { class: "portfolio", "aria-live": "polite" },
      el("div", { class: "page-head" }, el("h2", {}, t("portfolio.title")),
        el("span", { class: "muted" }, t("portfolio.count", { sites: sites.length, buildings: this.buildings.length }))),
      ordered.map((site) => siteSection(site, bySite.get(site.id), ctx)));
  }
}
