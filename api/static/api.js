// The dashboard's only door to the API: every route it uses is named here, once (the admins' users
// screen's in users-api.js).
"use strict";

const SESSION_KEY = "facility.session";
export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
  } catch {
    return null;
  }
}

/** The signed-in user and their token; kept per tab (sessionStorage), gone when the tab closes. */
export const session = {
  current: load(),
  save(value) {
    this.current = value;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  },
  clear() {
    this.current = null;
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/** A password change in flight: it ends every session of the user, this one's token included,
 * and its answer carries the new session's token. A 401 (or a `session_ended` on the stream)
 * that comes before that answer waits for it instead of signing the tab out. */
let sessionChange = null;

export async function request(method, path, { body, query, anonymous = false, changesSession = false } = {}) {
  const headers = { Accept: "application/json" };
  const token = anonymous ? null : session.current?.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    for (const item of [value].flat()) if (item !== undefined && item !== null && item !== "") url.searchParams.append(key, item);
  }
  const response = await fetch(url, { method, headers, body: payload });
  if (response.status === 401 && sessionChange && !changesSession && !anonymous) {
    await sessionChange;
    if (session.current?.token && session.current.token !== token) {
      return request(method, path, { body, query });  // once, with the new session's token
    }
  }
  if (response.status === 401 && session.current && !anonymous) {
    session.clear();
    window.dispatchEvent(new CustomEvent("session-expired"));
  }
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).detail ?? detail;
      // 422s are FastAPI's list of problems: keep their messages.
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
    } catch {
      // Not JSON: keep the status line.
    }
    const error = new ApiError(response.status, detail);
    error.retryAfterS = Number(response.headers.get("Retry-After")) || null;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

/** A token is renewed when this share of its lifetime has passed (by the browser's clock, so a
 * server clock that differs does not matter). */
const RENEW_AFTER = 2 / 3;
const MIN_RENEW_MS = 1000;
let renewTimer = null;

function saveToken(token) {
  session.save({
    token: token.access_token,
    renewAtMs: Date.now() + token.expires_in_s * 1000 * RENEW_AFTER,
    user: token.user,
  });
  keepAlive();
}

/** Renew the token before it runs out, for as long as the session lasts. */
export function keepAlive() {
  clearTimeout(renewTimer);
  if (!session.current) return;
  const delayMs = Math.max(MIN_RENEW_MS, (session.current.renewAtMs ?? 0) - Date.now());
  renewTimer = setTimeout(() => refresh().catch(() => {
    // Offline for a moment: try again soon; a 401 has already ended the session.
    if (session.current) renewTimer = setTimeout(keepAlive, MIN_RENEW_MS * 5);
  }), delayMs);
}

export async function login(username, password) {
  const token = await request("POST", "/auth/login", { body: { username, password }, anonymous: true });
  saveToken(token);
  return token.user;
}

/** A fresh token (and cookie) for this session; false when the session is already gone. */
export async function refresh() {
  if (sessionChange) await sessionChange;  // the new session's token is on its way: use it
  if (!session.current) return false;
  saveToken(await request("POST", "/auth/refresh"));
  return true;
}

/** Ends this session on the server too (its token and the cookie stop working), not only here. */
export async function logout() {
  clearTimeout(renewTimer);
  const token = session.current?.token;
  session.clear();
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  await fetch(`${API}/auth/logout`, { method: "POST", headers });
}

/** A new password for the signed-in user: every other session ends; this tab goes on with the
 * new session's token the answer carries. */
export async function changePassword(current, fresh) {
  const answer = request("PUT", "/users/me/password", {
    body: { current_password: current, new_password: fresh },
    changesSession: true,
  }).then((token) => {
    saveToken(token);
    return token;
  });
  sessionChange = answer.catch(() => null);
  try {
    return (await answer).user;
  } finally {
    sessionChange = null;
  }
}

/** Ends every session of the signed-in user, on every device, this one too. */
export async function logoutEverywhere() {
  await request("POST", "/users/me/logout-all");
  clearTimeout(renewTimer);
  session.clear();
}

export const api = {
  buildings: () => request("GET", "/buildings"),
  building: (id) => request("GET", `/buildings/${encodeURIComponent(id)}`),
  buildingStatus: (id) => request("GET", `/buildings/${encodeURIComponent(id)}/status`),
  device: (id) => request("GET", `/devices/${encodeURIComponent(id)}`),
  deviceStatus: (id) => request("GET", `/devices/${encodeURIComponent(id)}/status`),
  workOrders: (query) => request("GET", "/work-orders", { query }),
  workOrder: (id) => request("GET", `/work-orders/${encodeURIComponent(id)}`),
  /** `step` is {to, note?, hold_until_ms?, resolution_code?, confirm_active?}. */
  transition: (id, step) => request("POST", `/work-orders/${encodeURIComponent(id)}/transitions`, { body: step }),
  assign: (id, body) => request("POST", `/work-orders/${encodeURIComponent(id)}/assign`, { body }),
  comment: (id, text) => request("POST", `/work-orders/${encodeURIComponent(id)}/comments`, { body: { text } }),
  teams: () => request("GET", "/teams"),
  sites: () => request("GET", "/sites"),
  /** {start_ms, end_ms, lang, format} -> {blob, filename} */
  ownersReport: (query) => download("/reports/owners", query),
  assignees: () => request("GET", "/assignees"),
  deviceMaintenance: (id, query) => request("GET", `/devices/${encodeURIComponent(id)}/maintenance`, { query }),
  buildingReports: (id, query) => request("GET", `/buildings/${encodeURIComponent(id)}/reports`, { query }),
  publicLinks: (id) => request("GET", `/buildings/${encodeURIComponent(id)}/public-links`),
  orderPhotos: (id) => request("GET", `/work-orders/${encodeURIComponent(id)}/photos`),
  buildingMaintenance: (id, query) => request("GET", `/buildings/${encodeURIComponent(id)}/maintenance`, { query }),
  buildingCompliance: (id, query) => request("GET", `/buildings/${encodeURIComponent(id)}/compliance`, { query }),
  /** Buckets of `interval_s` for each field over [startMs, endMs]: {series: [{field, unit, buckets}]}. */
  history: (deviceId, fields, startMs, endMs, intervalS) =>
    request("GET", `/devices/${encodeURIComponent(deviceId)}/history`, {
      query: { field: fields, start_ms: Math.round(startMs), end_ms: Math.round(endMs), interval_s: intervalS },
    }),
};

/** A file the API makes (the owners' report): {blob, filename}; errors as request()'s. */
export async function download(path, query) {
  const headers = session.current?.token ? { Authorization: `Bearer ${session.current.token}` } : {};
  const url = new URL(API + path, location.origin);
  for (const [key, value] of Object.entries(query)) url.searchParams.append(key, value);
  const response = await fetch(url, { headers });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).detail ?? detail;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, detail);
  }
  const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return { blob: await response.blob(), filename: match ? match[1] : "report" };
}

/** The Server-Sent Events stream. EventSource cannot send headers: it authenticates with the
 * HttpOnly cookie that login and refresh set (same origin), so no token ever sits in a URL. */
export function eventsUrl() {
  return new URL(`${API}/events`, location.origin).toString();
}
