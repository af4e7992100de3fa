// A printable sheet of a building's QR codes: one per unit (its report form) and one for the
// building's public status page. Stewards of the building, dispatchers and admins.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { siteLabel } from "./sites.js";

function card(kind, title, hint, src, url) {
  return el("figure", { class: "qr-card", "data-qr": kind },
    el("img", { src, alt: title, class: "qr-image" }),
    el("figcaption", {}, el("b", {}, title), el("span", {}, hint), el("small", { class: "qr-url" }, url)));
}

export class QrView {
  constructor({ buildingId }) {
    this.buildingId = buildingId;
  }

  title = () => (this.links ? t("qr.title", { name: this.name() }) : "");

  /** The building's name, with its site's when there are several (the sheet says which estate). */
  name() {
    return [this.links.building_name, this.siteName].filter(Boolean).join(" · ");
  }

  wants = () => false;

  async load() {
    this.links ??= await api.publicLinks(this.buildingId);
    this.siteName ??= await siteLabel(this.buildingId);
  }

  draw() {
    const l = this.links;
    return el("div", { class: "qr-sheet", "data-building": l.building_id },
      el("p", { class: "no-print" }, el("a", { href: `#/buildings/${encodeURIComponent(l.building_id)}`, class: "back" }, `← ${l.building_name}`)),
      el("div", { class: "page-head no-print" }, el("h2", {}, t("qr.title", { name: this.name() })),
        el("button", { type: "button", class: "qr-print", onclick: () => window.print() }, t("qr.print"))),
      el("div", { class: "qr-grid" },
        l.units.map((u) => card("unit", u.unit_name, t("qr.unit_hint"), u.qr_svg_path, u.report_url)),
        card("status", `${l.building_name} · ${t("qr.status")}`, t("qr.status_hint"), l.status_qr_svg_path, l.status_url)));
  }
}
