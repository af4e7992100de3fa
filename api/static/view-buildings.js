// The steward's first page: their buildings as tiles coloured by the worst device state.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { STATUS_ORDER, statusBadge, statusClass } from "./format.js";
import { problemList } from "./problems.js";

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

export function buildingCard(building) {
  const kinds = KIND_ORDER.filter((k) => building.counts[k]);
  return el("a", {
    class: `building-card status-${statusClass(building.status)}`,
    href: `#/buildings/${encodeURIComponent(building.id)}`,
    "data-building": building.id,
    "data-status": building.status,
  },
    el("div", { class: "card-head" }, el("h3", {}, building.name), statusBadge(building.status)),
    el("ul", { class: "kind-chips" }, kinds.map((k) => kindChip(k, building.counts[k]))),
    problemList(building.problems),
    building.open_reports > 0 ? el("p", { class: "card-reports" }, t("buildings.reports", { count: building.open_reports })) : null,
    building.open_work_orders > 0
      ? el("p", { class: "card-foot" }, t("buildings.open_orders", { count: building.open_work_orders }))
      : null);
}

export class BuildingsView {
  title = () => t("buildings.title");

  wants = (event) => event.type === "building_status" || event.type === "work_order";

  async load() {
    this.buildings = await api.buildings();
  }

  draw() {
    if (this.buildings.length === 0) return el("p", { class: "empty" }, t("empty.buildings"));
    return el("div", { class: "building-grid", "aria-live": "polite" }, this.buildings.map(buildingCard));
  }
}
