// The sites the signed-in user can see (GET /sites). One site is the dashboard as it always was;
// several make a portfolio: a level of sites above the buildings, the site's name beside a
// building's, the board's site filter, sites on the users screen. Ids are scoped by their site
// then (`riverside:b03`), so the same `b03` of two estates never meets in a path or a filter.
"use strict";

import { api } from "./api.js";
import { STATUS_ORDER } from "./format.js";

const SCOPE_SEPARATOR = ":";
let known = null;

/** The visible sites, asked for once per sign-in; `fresh` reads them again (their status and
 * open orders change). */
export function visibleSites({ fresh = false } = {}) {
  if (fresh || !known) {
    const asked = api.sites();
    known = asked;
    // A failure is not kept: the next view asks again.
    asked.catch(() => { if (known === asked) known = null; });
  }
  return known;
}

/** Forget them: another user may sign in next. */
export function forgetSites() {
  known = null;
}

export function several(sites) {
  return (sites?.length ?? 0) > 1;
}

/** The name of the site of a scoped id when the user sees several sites; else null (the page
 * looks as a one-site deployment's). */
export async function siteLabel(id) {
  const sites = await visibleSites().catch(() => []);
  return several(sites) ? siteNameOf(sites, id) : null;
}

/** The site part of a scoped id (`riverside` of `riverside:b03`); null for a plain id. */
export function siteOfId(id) {
  const at = String(id ?? "").lastIndexOf(SCOPE_SEPARATOR);
  return at > 0 ? id.slice(0, at) : null;
}

/** An id without its site (`b03-u1-el2` of `riverside:b03-u1-el2`): where the site is said
 * beside it already. */
export function localId(id) {
  return id ? id.slice(String(id).lastIndexOf(SCOPE_SEPARATOR) + 1) : id;
}

/** The id of the site a building (a BuildingSummaryOut, or any object with an id) is in. */
export function buildingSite(building) {
  return building.site_id || siteOfId(building.id);
}

/** The name of the site `id` (a site's, or a scoped building's or device's id) is in. */
export function siteNameOf(sites, id) {
  const siteId = sites.some((s) => s.id === id) ? id : siteOfId(id);
  return sites.find((s) => s.id === siteId)?.name ?? siteId;
}

export function statusRank(status) {
  return STATUS_ORDER.indexOf(status);
}

/** The worst of some statuses (a site's: its buildings'). */
export function worstStatus(statuses) {
  return statuses.reduce((worst, s) => (statusRank(s) > statusRank(worst) ? s : worst), "ok");
}

/** Worst status first; ties keep their order (Array.prototype.sort is stable). */
export function worstFirst(items, statusOf = (item) => item.status) {
  return [...items].sort((a, b) => statusRank(statusOf(b)) - statusRank(statusOf(a)));
}
