// How statuses, severities, values and deadlines look, shared by every view.
"use strict";

import { el } from "./dom.js";
import { dateTime, duration, t, tOr } from "./i18n.js";

/** The API's building/device states; "alarm" and "fault" are both drawn red. */
export const STATUS_ORDER = ["ok", "unknown", "warning", "offline", "alarm", "fault"];
export const SEVERITY_ORDER = ["critical", "major", "minor", "warning"];
export const ACTIVE_STATUSES = ["open", "acknowledged", "in_progress", "on_hold"];
export const FINISHED_STATUSES = ["resolved", "closed", "cancelled"];
export const ALL_STATUSES = [...ACTIVE_STATUSES, ...FINISHED_STATUSES];

/** Which buttons a card shows: the lifecycle's allowed next steps (docs/api.md). */
export const ACTIONS = {
  open: ["acknowledged", "in_progress", "on_hold", "resolved", "cancelled"],
  acknowledged: ["in_progress", "on_hold", "resolved", "cancelled"],
  in_progress: ["on_hold", "resolved", "cancelled"],
  on_hold: ["in_progress", "resolved", "cancelled"],
  resolved: ["closed", "open"],
};
/** Steps only a dispatcher or admin takes (the server answers 403 to a technician). */
export const DISPATCHER_STEPS = new Set(["cancelled", "closed", "open"]);

export const ENUM_FIELDS = new Set(["direction", "door_state"]);

/** Units as the catalog spells them, as people write them. */
const UNITS = { degC: "°C", m3h: "m³/h", "m3/h": "m³/h" };

export function unitLabel(unit) {
  return UNITS[unit] ?? unit ?? "";
}

export function statusClass(status) {
  return status === "fault" ? "alarm" : status;
}

export function statusBadge(status) {
  return el("span", { class: `badge status-${statusClass(status)}`, "data-status": status }, t(`status.${status}`));
}

export function severityBadge(severity) {
  return el("span", { class: `badge severity-${severity}`, "data-severity": severity }, tOr(`severity.${severity}`, severity));
}

export function fieldLabel(name) {
  return tOr(`field.${name}`, name);
}

export function formatValue(name, value, unit) {
  if (typeof value === "boolean") return t(`bool.${value}`);
  if (ENUM_FIELDS.has(name)) return tOr(`enum.${name}.${value}`, String(value));
  if (typeof value !== "number") return String(value);
  const abs = Math.abs(value);
  const text = Number.isInteger(value) ? String(value) : value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
  const label = unitLabel(unit);
  return label ? `${text} ${label}` : text;
}

/** "12 min left" / "overdue 3 min" against the resolve-by (or respond-by) deadline; a resolved
 * or closed order's clock has stopped: "repaired in 2 h 5 min", within or past its SLA. */
export function slaText(order, nowMs) {
  if (FINISHED_STATUSES.includes(order.status)) {
    if (order.time_to_repair_s === null || order.time_to_repair_s === undefined) {
      return { text: t("sla.stopped"), overdue: false, leftMs: Infinity };
    }
    const late = order.resolve_by_ms && order.resolved_ms > order.resolve_by_ms;
    const key = late ? "sla.repaired_late" : "sla.repaired";
    return { text: t(key, { time: duration(order.time_to_repair_s * 1000) }), overdue: false, late, leftMs: Infinity };
  }
  const deadline = slaDeadline(order);
  if (deadline === null) return { text: t("sla.none"), overdue: false, leftMs: Infinity };
  const leftMs = deadline - nowMs;
  if (leftMs < 0) return { text: t("sla.overdue", { time: duration(-leftMs) }), overdue: true, leftMs };
  return { text: t("sla.left", { time: duration(leftMs) }), overdue: false, leftMs };
}

/** The deadline that matters now: respond-by until someone responded, then resolve-by. */
export function slaDeadline(order) {
  if (order.status === "open" && order.respond_by_ms) return order.respond_by_ms;
  return order.resolve_by_ms ?? order.respond_by_ms ?? null;
}

export function ago(ms, nowMs) {
  return t("time.ago", { time: duration(nowMs - ms) });
}

/** One line of an order's history in words. */
export function eventText(event) {
  const status = (s) => tOr(`order.status.${s}`, s ?? "");
  if (event.event === "transition") return t("event.transition", { from: status(event.from_status), to: status(event.to_status) });
  if (event.event === "assigned") return t("event.assigned", { to: event.note ?? "" });
  return tOr(`event.${event.event}`, event.event);
}

/** What a history line adds: the reason or note, the expected end of a hold, the resolution. */
export function eventDetail(event) {
  const parts = [];
  if (event.code) parts.push(tOr(`resolution.${event.code}`, event.code));
  if (event.due_ms) parts.push(t("order.hold_until", { time: dateTime(event.due_ms) }));
  if (event.note && event.event !== "assigned") parts.push(event.note);
  return parts.length ? ` — ${parts.join(" · ")}` : null;
}
