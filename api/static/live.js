// Live updates: the API's Server-Sent Events stream, or polling while the stream is down.
"use strict";

import { eventsUrl, refresh, session } from "./api.js";

export const POLL_MS = 5000;
const SSE_RETRY_MS = 30_000;
/** Events the stream sends that change what a view shows (docs/api.md, Live updates). */
const EVENT_NAMES = ["work_order", "building_status", "device_status"];

/**
 * Calls onChange(event) when something changed and onMode("sse" | "polling" | "offline") when
 * the way updates arrive changes. While the stream is connected nothing is polled; when it
 * fails (not there, refused, dropped and not back), polling takes over and the stream is tried
 * again every SSE_RETRY_MS.
 */
export class Live {
  constructor({ onChange, onMode }) {
    this.onChange = onChange;
    this.onMode = onMode;
    this.source = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.mode = null;
  }

  start() {
    this.stop();
    if (typeof EventSource === "undefined") {
      this.poll();
      return;
    }
    const source = new EventSource(eventsUrl());
    this.source = source;
    source.addEventListener("open", () => {
      this.stopPolling();
      this.setMode("sse");
      // Anything that changed while we were not listening.
      this.onChange({ type: "open" });
    });
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => this.onChange({ type: name, data: parse(event.data) }));
    }
    // The server could not replay what was missed while reconnecting: reload everything.
    source.addEventListener("reset", () => this.onChange({ type: "open" }));
    source.addEventListener("session_ended", () => {
      // Logged out, disabled, or the role or buildings changed: nothing more may come over
      // this session. A refresh is refused too, which shows the sign-in form.
      this.renewAndListen();
    });
    source.addEventListener("token_expired", () => {
      // The stream ends with the token: get a fresh one and listen again.
      this.renewAndListen();
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (404, 401, 5xx): poll, and try the stream again later.
        this.fallBack();
      } else if (this.mode === "sse") {
        // The browser is reconnecting on its own; poll meanwhile so the page stays current.
        this.setMode("offline");
        this.poll();
      }
    });
  }

  /** A fresh token, then the stream again; a refused refresh has signed the page out (no
   * polling then), a network failure falls back to polling. */
  renewAndListen() {
    this.closeSource();
    refresh().then(
      (ok) => ok && this.start(),
      () => session.current && this.fallBack(),
    );
  }

  fallBack() {
    this.closeSource();
    this.poll();
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.start(), SSE_RETRY_MS);
  }

  poll() {
    if (this.pollTimer === null) this.pollTimer = setInterval(() => this.onChange({ type: "poll" }), POLL_MS);
    if (this.mode !== "offline") this.setMode("polling");
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  closeSource() {
    if (this.source) this.source.close();
    this.source = null;
  }

  stop() {
    this.closeSource();
    this.stopPolling();
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.onMode(mode);
  }
}

function parse(data) {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}
