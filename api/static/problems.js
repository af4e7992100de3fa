// A building's worst open problems in words ("Elevator 2: passenger trapped"), as the server
// wrote them in each language.
"use strict";

import { el } from "./dom.js";
import { language } from "./i18n.js";

export function problemList(problems) {
  if (!problems?.length) return null;
  return el("ul", { class: "problems" }, problems.map((p) =>
    el("li", { class: `problem severity-${p.severity}`, "data-work-order": p.work_order_id, "data-source": p.source },
      p.text[language()] ?? p.text.en)));
}
