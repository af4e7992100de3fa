// The owners' meeting report: choose a month (or days) and a language, download the PDF or CSV
// that GET /api/v1/reports/owners makes. Periods are whole days in the estate's time zone.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { language, t } from "./i18n.js";
import { localId, several, siteNameOf, visibleSites } from "./sites.js";

export const REPORT_ROLES = new Set(["admin", "dispatcher", "steward"]);

/** Milliseconds `zone` is ahead of UTC at the instant `ms`. */
function zoneOffsetMs(ms, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** 00:00 of the day (year, month 1-12, day) in `zone`, as ms since the epoch. */
export function midnightMs(year, month, day, zone) {
  const guess = Date.UTC(year, month - 1, day);
  const first = guess - zoneOffsetMs(guess, zone);
  return guess - zoneOffsetMs(first, zone); // again at the answer: a DST change in between
}

function dayParts(text) {
  const [year, month, day] = text.split("-").map(Number);
  return [year, month, day];
}

/** The month before `nowMs` in `zone`, as "YYYY-MM" (what <input type=month> holds). */
function previousMonth(nowMs, zone) {
  const [year, month] = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit" })
    .format(new Date(nowMs)).split("-").map(Number);
  const prev = month === 1 ? [year - 1, 12] : [year, month - 1];
  return `${prev[0]}-${String(prev[1]).padStart(2, "0")}`;
}

export class ReportView {
  title = () => t("owners.title");

  /** Live events change nothing here; a redraw (language switch, reconnect) keeps the form. */
  wants = () => false;

  /** What the form holds and what the last download said, kept across redraws. */
  state = { month: null, from: "", to: "", lang: null, status: "", error: false, file: null, site: null };

  /** With several sites the report is one estate's (its owners meet): the form asks which. */
  async load(ctx) {
    this.sites = [...(await visibleSites())].sort((a, b) => a.name.localeCompare(b.name));
    // A steward of several sites reads their buildings by site and name (each site may have a b03).
    if (ctx.user()?.role === "steward" && several(this.sites)) {
      this.names ??= new Map((await api.buildings()).map((b) => [b.id, `${siteNameOf(this.sites, b.id)} · ${b.name}`]));
    }
    if (!this.sites.some((s) => s.id === this.state.site)) this.state.site = this.sites[0]?.id ?? null;
  }

  get site() {
    return this.sites.find((s) => s.id === this.state.site);
  }

  draw(ctx) {
    const user = ctx.user();
    if (!REPORT_ROLES.has(user?.role)) return el("p", { class: "empty" }, t("owners.not_allowed"));
    const zone = this.site?.timezone ?? "UTC";
    const state = this.state;
    state.month ??= previousMonth(ctx.nowMs(), zone);
    const remember = (event) => { state[event.currentTarget.name] = event.currentTarget.value; };
    const multi = several(this.sites);
    // Another site may keep another time zone: the periods are redrawn in it.
    const site = multi ? el("select", { name: "site", onchange: (event) => { remember(event); ctx.redraw(); } },
      this.sites.map((s) => el("option", { value: s.id, selected: s.id === state.site }, s.name))) : null;
    const status = el("p", {
      class: state.error ? "report-status error" : "report-status", role: "status", "aria-live": "polite",
      "data-file": state.file,
    }, state.status);
    // A download outlives the draw that started it (a reconnect or poll redraws the page):
    // what it says goes to the status line on the page now, not to the one it began with.
    this.status = status;
    const show = (text, { error = false, file = null } = {}) => {
      Object.assign(state, { status: text, error, file });
      const line = this.status;
      line.className = error ? "report-status error" : "report-status";
      if (file) line.dataset.file = file;
      else delete line.dataset.file;
      line.textContent = text;
    };
    const month = el("input", { type: "month", name: "month", value: state.month, required: true, oninput: remember });
    const from = el("input", { type: "date", name: "from", value: state.from, oninput: remember });
    const to = el("input", { type: "date", name: "to", value: state.to, oninput: remember });
    // The report's language follows the page's until one is chosen here.
    const chosen = state.lang ?? (language() === "zh-CN" ? "zh" : "en");
    const lang = el("select", { name: "lang", onchange: remember },
      el("option", { value: "en", selected: chosen === "en" }, t("owners.lang.en")),
      el("option", { value: "zh", selected: chosen === "zh" }, t("owners.lang.zh")));
    const period = () => {
      if (from.value || to.value) {
        if (!from.value || !to.value) throw new Error(t("owners.need_period"));
        const [start, end] = [dayParts(from.value), dayParts(to.value)];
        const startMs = midnightMs(...start, zone);
        const endMs = midnightMs(end[0], end[1], end[2] + 1, zone);
        if (endMs <= startMs) throw new Error(t("owners.days_order"));
        return { start_ms: startMs, end_ms: endMs };
      }
      if (!month.value) throw new Error(t("owners.need_period"));
      const [year, number] = month.value.split("-").map(Number);
      return { start_ms: midnightMs(year, number, 1, zone), end_ms: midnightMs(year, number + 1, 1, zone) };
    };
    const download = async (format, button) => {
      let query;
      try {
        query = { ...period(), lang: lang.value, format };
        if (multi) query.site = state.site;
      } catch (error) {
        show(error.message, { error: true });
        return;
      }
      button.disabled = true;
      show(t("owners.working"));
      try {
        const { blob, filename } = await api.ownersReport(query);
        const link = el("a", { href: URL.createObjectURL(blob), download: filename, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
        show(t("owners.done", { name: filename }), { file: filename });
      } catch (error) {
        show(t("error.load", { error: error.message }), { error: true });
      } finally {
        button.disabled = false;
      }
    };
    const button = (format) => el("button", {
      type: "button", class: `download download-${format}`, "data-format": format,
      onclick: (event) => download(format, event.currentTarget),
    }, t(`owners.${format}`));
    const scope = user.role === "steward" ? el("p", { class: "muted" }, t("owners.scope_steward", {
      buildings: [...user.buildings.map((id) => this.names?.get(id) ?? localId(id)), ...(user.sites ?? []).map((id) => siteNameOf(this.sites, id))].join(", "),
    })) : null;
    return el("section", { class: "report-page" },
      el("div", { class: "page-head" }, el("h2", {}, t("owners.title"))),
      el("p", {}, t("owners.intro")),
      scope,
      el("form", { class: "report-form", onsubmit: (event) => event.preventDefault() },
        site ? el("label", { class: "report-site" }, t("board.filter.site"), " ", site) : null,
        el("label", {}, t("owners.month"), " ", month),
        el("fieldset", {}, el("legend", {}, t("owners.or_days")),
          el("label", {}, t("owners.from"), " ", from), " ", el("label", {}, t("owners.to"), " ", to)),
        el("label", {}, t("owners.language"), " ", lang),
        el("p", { class: "muted" }, t("owners.timezone", { zone })),
        el("div", { class: "actions" }, button("pdf"), button("csv"))),
      status);
  }
}
