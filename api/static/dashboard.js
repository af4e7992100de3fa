// The dashboard's shell: sign-in, routing by role and URL, live refresh, language switch.
"use strict";

import { askAssign, askStep, confirmActive } from "./actions.js";
import { Announcer, announceControls } from "./announce.js";
import { api, keepAlive, logout, session } from "./api.js";
import { el, focusIn, keptState, restoreKept } from "./dom.js";
import { DISPATCHER_STEPS } from "./format.js";
import { clockTime, language, setLanguage, t, translatePage } from "./i18n.js";
import { Live, POLL_MS } from "./live.js";
import { AccountView } from "./view-account.js";
import { BoardView } from "./view-board.js";
import { BuildingView } from "./view-building.js";
import { BuildingsView } from "./view-buildings.js";
import { DeviceView } from "./view-device.js";
import { LoginView } from "./view-login.js";
import { LogbookView } from "./view-logbook.js";
import { OrderView } from "./view-order.js";
import { QrView } from "./view-qr.js";
import { REPORT_ROLES, ReportView } from "./view-report.js";
import { forgetSites, several, siteNameOf, visibleSites } from "./sites.js";
import { UsersView } from "./view-users.js";

const MAINTENANCE_ROLES = new Set(["technician", "dispatcher", "admin"]);
/** Live events come in bursts (one per device and building): redraw at most this often. */
const REDRAW_GAP_MS = 500;
/** A press held longer than this (a drag, a long press) no longer holds redraws back. */
const PRESS_HOLDS_DRAW_MS = 5_000;

const ROUTES = [
  [/^#\/buildings$/, () => new BuildingsView()],
  [/^#\/buildings\/([^/]+)$/, (m) => new BuildingView({ buildingId: decodeURIComponent(m[1]) })],
  [/^#\/buildings\/([^/]+)\/logbook$/, (m) => new LogbookView({ buildingId: decodeURIComponent(m[1]) })],
  [/^#\/buildings\/([^/]+)\/qr$/, (m) => new QrView({ buildingId: decodeURIComponent(m[1]) })],
  [/^#\/devices\/([^/]+)$/, (m) => new DeviceView({ deviceId: decodeURIComponent(m[1]) })],
  [/^#\/orders(?:\?(.*))?$/, (m) => new BoardView({ query: new URLSearchParams(m[1] ?? "") })],
  [/^#\/orders\/(\d+)$/, (m) => new OrderView({ orderId: Number(m[1]) })],
  [/^#\/users$/, () => new UsersView()],
  [/^#\/report$/, () => new ReportView()],
  [/^#\/account$/, () => new AccountView()],
];

class App {
  constructor() {
    this.main = document.getElementById("view");
    this.status = document.getElementById("live");
    this.view = null;
    this.loadedView = null;
    this.updatedMs = null;
    this.loading = null;
    this.again = false;
    this.timer = null;
    this.pressedAt = null;
    this.drawOnRelease = false;
    this.live = new Live({ onChange: (event) => this.changed(event), onMode: (mode) => this.showMode(mode) });
    this.unseen = 0;
    this.announcer = new Announcer({
      onCount: (n) => this.announced(n),
      // With several sites a new critical order says which estate it is in.
      where: (buildingId) => (several(this.sites) && buildingId ? siteNameOf(this.sites, buildingId) : null),
    });
    this.showSound = announceControls(this.announcer);
    this.ctx = {
      nowMs: () => Date.now(),
      user: () => this.user,
      refresh: () => this.refresh(),
      redraw: () => this.draw(),
      isMaintenance: () => this.isMaintenance(),
      mayChange: (order) => this.mayChange(order),
      mayStep: (order, to) => this.mayChange(order) && (!DISPATCHER_STEPS.has(to) || this.dispatches()),
      // Stewards comment on orders of their buildings (the only ones they see), staff on theirs.
      mayComment: (order) => this.user?.role === "steward" || this.mayChange(order),
      mayAssign: (order) => this.mayChange(order) && (this.dispatches() || order.assignee !== this.user?.username),
      transition: (order, to) => this.transition(order, to),
      assign: (order) => this.assign(order),
      comment: (order, text, sent) => this.comment(order, text, sent),
      announcer: this.announcer,
      signedIn: (user) => this.signedIn(user),
      signedOutEverywhere: () => this.signedOut("session.everywhere"),
    };
  }

  dispatches() {
    return this.user?.role === "admin" || this.user?.role === "dispatcher";
  }

  /** New critical orders not yet seen: counted in the tab's title until the page is touched. */
  announced(count) {
    this.unseen = count;
    if (!count) document.getElementById("announce").replaceChildren();
    this.setTitle();
  }

  setTitle() {
    const title = [this.loadedView === this.view ? this.view?.title() : "", t("app.title")].filter(Boolean).join(" · ");
    document.title = this.unseen ? `(${this.unseen}) ${title}` : title;
  }

  get user() {
    return session.current?.user ?? null;
  }

  isMaintenance() {
    return MAINTENANCE_ROLES.has(this.user?.role);
  }

  /** What docs/api.md lets each role change; the server checks again and answers 403. */
  mayChange(order) {
    const user = this.user;
    if (user?.role === "admin" || user?.role === "dispatcher") return true;
    if (user?.role !== "technician") return false;
    return order.assignee === user.username || (user.team !== null && order.team === user.team);
  }

  home() {
    return this.isMaintenance() ? "#/orders" : "#/buildings";
  }

  start() {
    document.getElementById("lang").addEventListener("click", () => {
      setLanguage(language() === "en" ? "zh-CN" : "en");
      this.translate();
    });
    document.getElementById("logout").addEventListener("click", async () => {
      await logout().catch(() => {});
      this.signedOut(null);
    });
    window.addEventListener("hashchange", () => this.route());
    window.addEventListener("session-expired", () => this.signedOut("session.expired"));
    this.holdDrawsWhilePressed();
    keepAlive();
    this.translate();
    if (this.user) this.live.start();
    this.route();
  }

  signedIn() {
    forgetSites();
    this.sites = null;
    this.live.start();
    // A link followed before signing in (e.g. to one work order) is kept; else the role's home.
    this.route();
  }

  signedOut(noticeKey) {
    this.live.stop();
    forgetSites();
    this.sites = null;
    this.showSites();
    this.show(new LoginView({ noticeKey }));
  }

  route() {
    if (!this.user) {
      this.show(new LoginView());
      return;
    }
    if (!this.sites) this.loadSites();
    const hash = location.hash;
    for (const [pattern, make] of ROUTES) {
      const match = pattern.exec(hash);
      if (match) {
        this.show(make(match));
        return;
      }
    }
    location.replace(this.home());
  }

  show(view) {
    this.view = view;
    // Views whose numbers change without a status change (a device's readings) also re-read
    // themselves on a timer while they are shown.
    clearInterval(this.viewTimer);
    if (view.refreshMs) this.viewTimer = setInterval(() => this.view === view && this.soon(), view.refreshMs);
    this.main.replaceChildren(el("p", { class: "muted" }, t("loading")));
    this.chrome();
    this.refresh();
  }

  /** Load the view's data and draw it; a refresh asked for meanwhile runs once afterwards. */
  async refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    const view = this.view;
    this.loading = (async () => {
      try {
        await view.load(this.ctx);
        if (view === this.view) {
          this.loadedView = view;
          this.draw();
          this.updatedMs = view instanceof LoginView ? null : Date.now();
          this.showUpdated();
        }
      } catch (error) {
        if (view === this.view && error.status !== 401) {
          this.main.replaceChildren(el("p", { class: "error", role: "alert" }, t("error.load", { error: error.message })));
        }
      } finally {
        this.loading = null;
      }
      if (this.again) {
        this.again = false;
        await this.refresh();
      }
    })();
    return this.loading;
  }

  /** A live event, a poll, or the stream (re)opening: redraw if the view shows what changed. */
  changed(event) {
    if (event.type === "work_order" && this.isMaintenance()) this.announcer.event(event.data);
    if (!event.data || !this.view?.wants || this.view.wants(event.data)) this.soon();
  }

  /** A refresh soon, coalescing a burst of live events into one. */
  soon() {
    if (this.timer !== null || !this.user || this.view instanceof LoginView) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, REDRAW_GAP_MS);
  }

  /** A redraw under a pressed mouse button or finger moves the pressed node into the new
   * page, and the browser then drops the click (press and release must land on a node that
   * stayed in place): a live update arriving mid-click ate an admin's "Change password". A
   * redraw asked for while the page is pressed waits for the release, after the click. */
  holdDrawsWhilePressed() {
    document.addEventListener("pointerdown", (event) => {
      if (this.main.contains(event.target)) this.pressedAt = Date.now();
    }, true);
    const released = () => {
      if (this.pressedAt === null) return;
      this.pressedAt = null;
      if (!this.drawOnRelease) return;
      this.drawOnRelease = false;
      setTimeout(() => this.draw(), 0); // the click this release makes is handled first
    };
    for (const type of ["pointerup", "pointercancel"]) document.addEventListener(type, released, true);
    window.addEventListener("blur", released);
  }

  /** Draw the current view from the data it last loaded (nothing before its first load). */
  draw() {
    if (this.loadedView !== this.view) return;
    if (this.pressedAt !== null && Date.now() - this.pressedAt < PRESS_HOLDS_DRAW_MS) {
      this.drawOnRelease = true;
      return;
    }
    const scroll = window.scrollY;
    const kept = keptState(this.main);
    const typing = focusIn(this.main);
    this.main.replaceChildren(this.view.draw(this.ctx));
    restoreKept(this.main, kept);
    typing?.();
    window.scrollTo(0, scroll);
    this.setTitle();
  }

  /** One lifecycle step: ask what it needs, send it; a fault found still active on the server
   * (the page's copy was older) asks for the confirmation and sends it again. */
  async transition(order, to) {
    const action = t(`order.action.${to}`);
    await this.change(action, async () => {
      const step = await askStep(order, to);
      if (!step) return false;
      try {
        await api.transition(order.id, step);
      } catch (error) {
        if (error.status !== 409 || to !== "resolved" || step.confirm_active || !/still active/.test(error.message)) throw error;
        if (!(await confirmActive(order))) return false;
        await api.transition(order.id, { ...step, confirm_active: true });
      }
      return true;
    });
  }

  async assign(order) {
    const action = t("order.assign");
    await this.change(action, async () => {
      // A technician takes the order; dispatchers and admins choose who and which team.
      const body = this.dispatches() ? await askAssign(order) : { assignee: this.user.username };
      if (!body) return false;
      await api.assign(order.id, body);
      return true;
    });
  }

  /** `sent()` runs once the comment is stored, before the page is drawn again. */
  async comment(order, text, sent) {
    await this.change(t("order.comment_add"), async () => {
      await api.comment(order.id, text);
      sent();
      return true;
    });
  }

  /** Run a change, say how it went, and show the result (or the unchanged page, if dismissed). */
  async change(action, run) {
    try {
      if (await run()) this.toast(t("order.action.done", { action }));
    } catch (error) {
      this.toast(t("error.action", { action, error: error.message }), true);
    }
    await this.refresh();
  }

  toast(text, isError = false) {
    const node = el("div", { class: isError ? "toast error" : "toast", role: "status" }, text);
    document.getElementById("toasts").append(node);
    setTimeout(() => node.remove(), 4000);
  }

  showMode(mode) {
    this.status.dataset.mode = mode;
    this.status.textContent = mode === "polling" ? t("live.polling", { seconds: POLL_MS / 1000 }) : t(`live.${mode}`);
  }

  /** Header parts that depend on who is signed in. */
  chrome() {
    const user = this.user;
    document.body.dataset.role = user?.role ?? "";
    document.getElementById("nav-board").hidden = !this.isMaintenance();
    document.getElementById("nav-users").hidden = user?.role !== "admin";
    document.getElementById("nav-report").hidden = !REPORT_ROLES.has(user?.role);
    document.getElementById("sound").hidden = !this.isMaintenance();
    this.showSound();
    if (!this.isMaintenance()) document.getElementById("notify").hidden = true;
    document.getElementById("nav").hidden = !user;
    document.getElementById("logout").hidden = !user;
    this.status.hidden = !user;
    document.getElementById("who").textContent = user ? `${user.display_name || user.username} · ${t(`role.${user.role}`)}` : "";
    for (const link of document.querySelectorAll("#nav a")) {
      link.classList.toggle("current", location.hash.startsWith(link.getAttribute("href")));
    }
  }

  /** The header names the user's site, or how many they see (a portfolio's own name is no
   * estate's); the server's name until they are known. */
  async loadSites() {
    const user = this.user;
    let sites;
    try {
      sites = await visibleSites();
    } catch {
      return; // asked again on the next route
    }
    if (this.user !== user) return; // signed out (or in as another) meanwhile
    this.sites = sites;
    this.showSites();
  }

  showSites() {
    const node = document.querySelector(".topbar .site");
    node.dataset.server ??= node.textContent;
    if (!this.user || !this.sites?.length) node.textContent = node.dataset.server;
    else node.textContent = several(this.sites) ? t("portfolio.header", { count: this.sites.length }) : this.sites[0].name;
  }

  showUpdated() {
    document.getElementById("updated").textContent = this.updatedMs ? t("updated", { time: clockTime(this.updatedMs) }) : "";
  }

  translate() {
    translatePage();
    this.showUpdated();
    this.showSites();
    document.documentElement.lang = language();
    if (this.live.mode) this.showMode(this.live.mode);
    this.chrome();
    if (this.view && !this.loading) this.draw();
  }
}

new App().start();
