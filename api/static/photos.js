// The photos a resident sent with a report, on the work order's page.
"use strict";

import { el } from "./dom.js";
import { t } from "./i18n.js";

export function photoSection(photos) {
  if (!photos?.length) return null;
  return el("section", { class: "order-photos" },
    el("h3", {}, t("order.photos")),
    el("p", { class: "report-photos" }, photos.map((p, i) =>
      el("a", { href: p.url, target: "_blank", rel: "noopener" },
        el("img", { src: p.url, alt: t("reports.photo", { n: i + 1 }), loading: "lazy" })))));
}
