// What a step asks for before it is sent (a reason, a date, a resolution code), the confirmation
// a still-active fault needs, assigning and commenting. Dialogs are <dialog> elements built with
// el(): no inline script or style, so the page's strict CSP holds.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { t, tOr } from "./i18n.js";

export const RESOLUTION_CODES = [
  "repaired", "part_replaced", "adjusted", "reset", "cleaned", "external_cause", "no_fault_found", "false_alarm", "duplicate",
  "maintenance_done",
];
const NEEDS_REASON = new Set(["on_hold", "cancelled", "open"]);
const DAY_MS = 86_400_000;

/** A modal form; resolves to its FormData, or null when dismissed. */
function ask({ title, fields, submit, name, warning = null }) {
  return new Promise((resolve) => {
    const form = el("form", { method: "dialog", class: "dialog-form" },
      el("h3", {}, title),
      warning ? el("p", { class: "notice", role: "alert" }, warning) : null,
      fields,
      el("div", { class: "dialog-buttons" },
        el("button", { type: "button", class: "dialog-cancel", onclick: () => dialog.close("") }, t("dialog.cancel")),
        el("button", { type: "submit", class: "dialog-submit", value: "ok" }, submit)));
    const dialog = el("dialog", { class: "action-dialog", "data-dialog": name }, form);
    let data = null;
    form.addEventListener("submit", () => { data = new FormData(form); });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? data : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function field(label, control) {
  return el("label", { class: "dialog-field" }, el("span", {}, label), control);
}

/** "YYYY-MM-DDTHH:MM" in the browser's time zone, for a datetime-local input. */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

/** The body of the transition to `to`, asking for what it needs; null when the user backs out. */
export async function askStep(order, to) {
  const step = { to };
  if (to === "resolved") {
    const data = await ask({
      name: "resolve", title: t("dialog.resolve.title", { id: order.id }), submit: t("order.action.resolved"),
      fields: [
        field(t("dialog.resolution_code"), el("select", { name: "code", required: true },
          el("option", { value: "" }, t("dialog.choose")),
          RESOLUTION_CODES.map((code) => el("option", { value: code }, tOr(`resolution.${code}`, code))))),
        field(t("dialog.note"), el("textarea", { name: "note", rows: 3, maxlength: 2000 })),
      ],
    });
    if (!data) return null;
    step.resolution_code = data.get("code");
    if (data.get("note").trim()) step.note = data.get("note").trim();
    if (order.fault_active && !(await confirmActive(order))) return null;
    if (order.fault_active) step.confirm_active = true;
    return step;
  }
  if (!NEEDS_REASON.has(to)) return step;
  const fields = [field(t(`dialog.reason.${to}`), el("textarea", { name: "reason", rows: 3, maxlength: 2000, required: true }))];
  if (to === "on_hold") {
    const now = Date.now();
    fields.push(field(t("dialog.hold_until"), el("input", {
      type: "datetime-local", name: "until", required: true,
      min: localInput(now + 60_000), max: localInput(now + 366 * DAY_MS), value: localInput(now + DAY_MS),
    })));
  }
  const data = await ask({ name: to, title: t(`dialog.${to}.title`, { id: order.id }), submit: t(`order.action.${to}`), fields });
  if (!data) return null;
  step.note = data.get("reason").trim();
  if (to === "on_hold") step.hold_until_ms = new Date(data.get("until")).getTime();
  return step;
}

/** The fault behind the order has not cleared: resolving needs a yes. */
export async function confirmActive(order) {
  const data = await ask({
    name: "confirm-active", title: t("dialog.active.title", { id: order.id }),
    warning: t("dialog.active.warning"), submit: t("dialog.active.confirm"), fields: [],
  });
  return data !== null;
}

/** Give the order to a person and/or a team (both from the server's lists). */
export async function askAssign(order) {
  const [people, teams] = await Promise.all([api.assignees(), api.teams()]);
  const data = await ask({
    name: "assign", title: t("dialog.assign.title", { id: order.id }), submit: t("order.assign"),
    fields: [
      field(t("order.assignee"), el("select", { name: "assignee" },
        el("option", { value: "" }, t("order.unassigned")),
        people.map((p) => el("option", { value: p.username, selected: p.username === order.assignee },
          `${p.display_name || p.username} (${t(`role.${p.role}`)}${p.team ? ` · ${tOr(`team.${p.team}`, p.team)}` : ""})`)))),
      field(t("order.team"), el("select", { name: "team" },
        teams.map((team) => el("option", { value: team, selected: team === order.team }, tOr(`team.${team}`, team))))),
      field(t("dialog.note"), el("textarea", { name: "note", rows: 2, maxlength: 2000 })),
    ],
  });
  if (!data) return null;
  const body = { assignee: data.get("assignee") || null };
  if (data.get("team") && data.get("team") !== order.team) body.team = data.get("team");
  if (data.get("note").trim()) body.note = data.get("note").trim();
  return body;
}

/** A comment box; `send(text, sent)` posts it and calls `sent()` once stored. What is typed
 * survives live redraws (`key` names the box) and a failed send; a stored comment empties it. */
export function commentForm(send, key) {
  const text = el("textarea", {
    name: "text", rows: 2, maxlength: 4000, required: true, "aria-label": t("order.comment_add"), "data-keep": `comment-${key}`,
  });
  return el("form", { class: "comment-form", onsubmit: async (event) => {
    event.preventDefault();
    if (!text.value.trim()) return;
    const button = event.currentTarget.querySelector("button");
    button.disabled = true;
    await send(text.value.trim(), () => {
      text.value = "";
      text.closest("details")?.removeAttribute("open");
    });
  } }, text, el("button", { type: "submit" }, t("order.comment_add")));
}
