// A building's public status page: its outages in plain words, in English and 中文, read
// again every half minute. No login, and nothing private in what the server sends.
"use strict";

import { clockTime, language, setLanguage, t, translatePage } from "./i18n.js";
import { el } from "./dom.js";

const REFRESH_MS = 30_000;
const main = document.getElementById("status");
let last = null;

function draw() {
  translatePage();
  document.documentElement.lang = language();
  const heading = document.getElementById("building");
  heading.textContent = language() === "zh-CN" ? heading.dataset.zh : heading.dataset.en;
  document.title = `${heading.textContent} · ${t("public.status.title")}`;
  if (!last) return;
  const pick = (words) => words[language()] ?? words.en;
  document.getElementById("outages").replaceChildren(
    ...last.outages.map((o) => el("li", { class: "outage", "data-kind": o.kind }, pick(o.text))));
  document.getElementById("all-ok").hidden = last.outages.length > 0;
  document.getElementById("status-updated").textContent = t("public.status.updated", { time: clockTime(last.updated_ms) });
}

async function load() {
  try {
    const response = await fetch(`/api/v1/public/status/${encodeURIComponent(main.dataset.code)}`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    last = await response.json();
    document.getElementById("status-error").hidden = true;
    main.dataset.loaded = "true";
  } catch {
    document.getElementById("status-error").hidden = false;
  }
  draw();
}

document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "en" ? "zh-CN" : "en");
  draw();
});
draw();
load();
setInterval(load, REFRESH_MS);
