// The admins' users screen: add a user, disable or enable one, set a forgotten password, change a
// role, team or buildings (and, with several sites, the whole sites a user is limited to), unlock
// an account held back by failed logins, and keep the managed list of teams.
// Every rule (names, passwords, the last admin) is the server's; its answer is shown in words.
"use strict";

import { api } from "./api.js";
import { el } from "./dom.js";
import { dateTime, t, tOr } from "./i18n.js";
import { buildingSite, several, siteNameOf, visibleSites } from "./sites.js";
import { usersApi } from "./users-api.js";

export const ROLES = ["admin", "dispatcher", "technician", "steward"];
/** What the API accepts (api/schemas.py UserIn, TeamIn); the server checks again. */
const USERNAME_PATTERN = "[a-z0-9][a-z0-9._\\-]{2,63}";
const TEAM_PATTERN = "[a-z0-9][a-z0-9._\\-]{0,63}";
export const MIN_PASSWORD = 8;
export const MAX_PASSWORD = 256;

const teamName = (team) => tOr(`team.${team}`, team);

export function field(label, control, hint = null) {
  return el("label", { class: "users-field" }, el("span", {}, label), control,
    hint ? el("small", { class: "muted" }, hint) : null);
}

/** Roles a set of whole sites scopes: a steward's (beside their buildings), a regional desk's. */
const SITE_ROLES = new Set(["steward", "dispatcher", "technician"]);

function checkbox(name, value, label, checked) {
  return el("label", { class: "users-building" },
    el("input", { type: "checkbox", name, value, checked }), ` ${label}`);
}

/** The role, team, sites and buildings controls; team shows for technicians, buildings for
 * stewards, sites (when there are several) for the roles they limit. */
function scopeFields(view, { role, team, buildings, sites }) {
  const teamSelect = el("select", { name: "team" },
    el("option", { value: "" }, t("users.no_team")),
    view.teams.map((name) => el("option", { value: name, selected: name === team }, teamName(name))));
  const chosen = new Set(buildings ?? []);
  const box = (b) => checkbox("building", b.id, b.name, chosen.has(b.id));
  // With several sites, each has its "Building 3": the buildings go under their site's name.
  const boxes = el("fieldset", { class: "users-buildings" },
    el("legend", {}, t("users.buildings")),
    view.sites.length
      ? view.sites.map((site) => el("div", { class: "users-site-buildings", "data-site": site.id },
        el("b", {}, site.name), view.buildings.filter((b) => buildingSite(b) === site.id).map(box)))
      : view.buildings.map(box));
  const chosenSites = new Set(sites ?? []);
  const siteLegend = el("legend", {});
  const siteBoxes = view.sites.length ? el("fieldset", { class: "users-buildings users-sites" }, siteLegend,
    view.sites.map((site) => checkbox("site", site.id, site.name, chosenSites.has(site.id)))) : null;
  const teamField = field(t("users.team"), teamSelect);
  const roleSelect = el("select", { name: "role", required: true },
    ROLES.map((r) => el("option", { value: r, selected: r === role }, t(`role.${r}`))));
  const show = () => {
    teamField.hidden = roleSelect.value !== "technician";
    boxes.hidden = roleSelect.value !== "steward";
    if (siteBoxes) {
      siteBoxes.hidden = !SITE_ROLES.has(roleSelect.value);
      siteLegend.textContent = t(roleSelect.value === "steward" ? "users.sites.steward" : "users.sites.staff");
    }
  };
  roleSelect.addEventListener("change", show);
  show();
  return [field(t("users.role"), roleSelect), teamField, siteBoxes, boxes];
}

/** What was typed into `from` put into `to`, a form made anew because what it offers changed
 * (a team added or removed): fields by name, boxes by name and value, a choice only where it is
 * still offered; an open form stays open and the field being typed in keeps the focus. */
function carryOver(from, to) {
  const formOf = (node) => (node.tagName === "FORM" ? node : node.querySelector("form"));
  const source = formOf(from);
  const target = formOf(to);
  if (!source || !target) return;
  if (from.tagName === "DETAILS" && to.tagName === "DETAILS") to.open = from.open;
  const controls = [...target.elements];
  let focused = null;
  for (const control of source.elements) {
    if (!control.name) continue;
    const twin = controls.find((c) => c.name === control.name
      && (control.type !== "checkbox" || c.value === control.value));
    if (!twin) continue;
    if (control.type === "checkbox") twin.checked = control.checked;
    else if (control.tagName === "SELECT") {
      if (![...twin.options].some((o) => o.value === control.value)) continue;
      twin.value = control.value;
      twin.dispatchEvent(new Event("change")); // the fields the role shows follow
    } else twin.value = control.value;
    if (control === document.activeElement) focused = [twin, control.selectionStart ?? null];
  }
  if (focused) {
    const [field, caret] = focused;
    requestAnimationFrame(() => {
      if (!field.isConnected) return;
      field.focus();
      if (caret !== null) field.setSelectionRange(caret, caret);
    });
  }
}

/** {role, team, buildings, sites} as the form says, with only what the role takes (no site
 * boxes with one site: none). */
function scopeOf(form) {
  const data = new FormData(form);
  const role = data.get("role");
  return {
    role,
    team: role === "technician" ? data.get("team") || null : null,
    buildings: role === "steward" ? data.getAll("building") : [],
    sites: SITE_ROLES.has(role) ? data.getAll("site") : [],
  };
}

const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

export class UsersView {
  constructor() {
    this.message = null;
    // The forms outlive a redraw (a live-updates reconnect or poll redraws the page): what an
    // admin is typing stays. A form is made anew when what it was made from changed (the
    // user it edits, the teams, sites and buildings it offers) and, once a change it sent has
    // succeeded, from data read after that change; only then is the success said (a reload
    // already under way when the change was made still has the old teams and users). The
    // other forms keep what is typed in them: disabling one user does not empty the form of
    // the next one being added.
    /** key -> {options, node}: each form and the options it was made with. */
    this.forms = new Map();
    this.drawn = new Set();
    this.changes = 0;
    /** Changes that succeeded and the form that sent each, until data read after them. */
    this.sent = [];
    /** What the forms offer (teams, sites, buildings): a form made with other options is stale. */
    this.options = "";
  }

  /** The form under `key`, made by `make(key)` when there is none for the current options;
   * one made for other options gives the new one what was typed into it. */
  keep(key, make) {
    const kept = this.forms.get(key);
    if (kept?.options !== this.options) {
      const node = make(key);
      if (kept) carryOver(kept.node, node);
      this.forms.set(key, { options: this.options, node });
    }
    this.drawn.add(key);
    return this.forms.get(key).node;
  }

  title = () => t("users.title");

  /** Nothing on the live stream is about users. */
  wants = () => false;

  async load() {
    const changes = this.changes;
    let sites;
    [this.users, this.teams, this.buildings, sites] = await Promise.all([
      usersApi.list(), usersApi.teams(), api.buildings(), visibleSites().catch(() => []),
    ]);
    this.sites = several(sites) ? sites : [];
    this.options = JSON.stringify([this.teams, this.sites.map((site) => site.id), this.buildings.map((b) => b.id)]);
    // Data read after these changes: the forms that sent them start empty again.
    for (const { form, message } of this.sent.filter((s) => s.change <= changes)) {
      if (form) this.forms.delete(form);
      this.message = message;
    }
    this.sent = this.sent.filter((s) => s.change > changes);
  }

  /** Say how it went: in place for a failure (the form keeps what was typed), after a reload
   * for a success. */
  async run(ctx, action, work, form = null) {
    try {
      const done = await work();
      this.changes += 1;
      this.sent.push({ change: this.changes, form, message: { text: done, error: false } });
      await ctx.refresh();
    } catch (error) {
      this.show({ text: t("users.error", { action, error: error.message }), error: true });
    }
  }

  show(message) {
    this.message = message;
    if (!this.messageNode) return;
    this.messageNode.replaceChildren(message.text);
    this.messageNode.className = message.error ? "users-message error" : "users-message ok";
    this.messageNode.setAttribute("role", message.error ? "alert" : "status");
    this.messageNode.hidden = false;
    this.messageNode.scrollIntoView({ block: "nearest" });
  }

  addForm(ctx, key) {
    const form = el("form", { class: "users-add", "data-form": "add-user", onsubmit: (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const { sites, ...scope } = scopeOf(form);
      const body = { username: data.get("username").trim(), password: data.get("password"), ...scope };
      if (sites.length) body.sites = sites;
      if (data.get("display_name").trim()) body.display_name = data.get("display_name").trim();
      this.run(ctx, t("users.submit_add"), async () => {
        await usersApi.add(body);
        return t("users.added", { name: body.username });
      }, key);
    } },
    el("h3", {}, t("users.add")),
    el("div", { class: "users-grid" },
      field(t("users.username"), el("input", { name: "username", required: true, pattern: USERNAME_PATTERN, maxlength: 64, autocomplete: "off" }), t("users.username_hint")),
      field(t("users.display_name"), el("input", { name: "display_name", maxlength: 128, autocomplete: "off" })),
      field(t("users.password"), el("input", { name: "password", type: "password", required: true, minlength: MIN_PASSWORD, maxlength: MAX_PASSWORD, autocomplete: "new-password" }),
        t("users.password_hint", { min: MIN_PASSWORD, max: MAX_PASSWORD })),
      scopeFields(this, { role: "technician", team: null, buildings: [], sites: [] })),
    el("button", { type: "submit" }, t("users.submit_add")));
    return form;
  }

  editForm(ctx, user, key) {
    const form = el("form", { class: "users-edit-form", onsubmit: (event) => {
      event.preventDefault();
      const { sites, ...scope } = scopeOf(form);
      const multi = this.sites.length > 0;
      const sitesChanged = multi && !sameSet(sites, user.sites ?? []);
      const sameRole = scope.role === user.role && scope.team === user.team;
      this.run(ctx, t("users.save"), async () => {
        // Only the sites changed; a steward staying one changes only buildings; anything else is
        // a role change (with the sites, when there are several).
        if (sitesChanged && sameRole && sameSet(scope.buildings, user.buildings)) await usersApi.setSites(user.username, sites);
        else if (!sitesChanged && scope.role === "steward" && user.role === "steward") await usersApi.setBuildings(user.username, scope.buildings);
        else {
          const body = scope.role === "steward" ? { role: scope.role, buildings: scope.buildings } : { role: scope.role, team: scope.team };
          await usersApi.setRole(user.username, multi ? { ...body, sites } : body);
        }
        return t("users.saved", { name: user.username });
      }, key);
    } },
    el("div", { class: "users-grid" }, scopeFields(this, user)),
    el("button", { type: "submit" }, t("users.save")));
    return el("details", { class: "users-edit" }, el("summary", {}, t(this.sites.length ? "users.change_sites" : "users.change")), form);
  }

  passwordForm(ctx, user, key) {
    const password = el("input", { name: "password", type: "password", required: true, minlength: MIN_PASSWORD, maxlength: MAX_PASSWORD, autocomplete: "new-password" });
    const form = el("form", { class: "users-password-form", "data-form": "set-password", onsubmit: (event) => {
      event.preventDefault();
      this.run(ctx, t("users.set_password"), async () => {
        await usersApi.setPassword(user.username, password.value);
        return t("users.password_set", { name: user.username });
      }, key);
    } },
    field(t("users.password"), password, t("users.set_password_hint")),
    el("button", { type: "submit" }, t("users.set_password")));
    return el("details", { class: "users-password" }, el("summary", {}, t("users.set_password")), form);
  }

  /** What the user is limited to, in words: a team, buildings, whole sites. */
  scopeText(user) {
    const multi = this.sites.length > 0;
    const building = (id) => {
      const name = this.buildings.find((b) => b.id === id)?.name ?? id;
      return multi ? `${siteNameOf(this.sites, id)} · ${name}` : name;
    };
    const parts = [];
    if (user.role === "technician") parts.push(user.team ? teamName(user.team) : t("users.no_team"));
    if (user.role === "steward" && user.buildings.length) parts.push(user.buildings.map(building).join(", "));
    if (multi && user.sites?.length) parts.push(t("users.sites_scope", { sites: user.sites.map((id) => siteNameOf(this.sites, id)).join(", ") }));
    return parts.join(" · ") || null;
  }

  userRow(ctx, user) {
    const me = ctx.user()?.username === user.username;
    const scope = this.scopeText(user);
    const toggle = user.disabled
      ? el("button", { type: "button", "data-action": "enable", onclick: () => this.run(ctx, t("users.enable"), async () => {
        await usersApi.enable(user.username);
        return t("users.enabled_done", { name: user.username });
      }) }, t("users.enable"))
      : el("button", { type: "button", "data-action": "disable", onclick: () => this.run(ctx, t("users.disable"), async () => {
        await usersApi.disable(user.username);
        return t("users.disabled_done", { name: user.username });
      }) }, t("users.disable"));
    const unlock = el("button", { type: "button", "data-action": "unlock", onclick: () => this.run(ctx, t("users.unlock"), async () => {
      const result = await usersApi.unlock(user.username);
      return t("users.unlocked", { name: user.username, count: result.cleared });
    }) }, t("users.unlock"));
    return el("li", { class: "user-row", "data-user": user.username, "data-role": user.role, "data-disabled": String(user.disabled) },
      el("div", { class: "user-head" },
        el("b", { class: "user-name" }, user.username),
        user.display_name && user.display_name !== user.username ? el("span", { class: "muted" }, ` ${user.display_name}`) : null,
        me ? el("span", { class: "muted" }, ` ${t("users.you")}`) : null,
        el("span", { class: "badge user-role" }, t(`role.${user.role}`)),
        el("span", { class: user.disabled ? "badge user-state disabled" : "badge user-state" },
          t(user.disabled ? "users.status.disabled" : "users.status.enabled"))),
      scope ? el("p", { class: "user-scope" }, scope) : null,
      user.backoff_clients
        ? el("p", { class: "user-locked" }, t("users.locked", { count: user.backoff_clients, time: dateTime(user.backoff_until_ms) }))
        : null,
      el("div", { class: "user-actions" }, toggle, unlock),
      this.keep(`edit:${user.username}:${user.role}:${user.team}:${user.buildings}:${user.sites}`, (key) => this.editForm(ctx, user, key)),
      // An admin's own password is changed on their account page, with the current one.
      me ? null : this.keep(`password:${user.username}`, (key) => this.passwordForm(ctx, user, key)));
  }

  teamForm(ctx, key) {
    const form = el("form", { class: "teams-add", "data-form": "add-team", onsubmit: (event) => {
      event.preventDefault();
      const name = new FormData(form).get("name").trim();
      this.run(ctx, t("users.team_add"), async () => {
        await usersApi.addTeam(name);
        return t("users.team_added", { name });
      }, key);
    } },
    field(t("users.team_name"), el("input", { name: "name", required: true, pattern: TEAM_PATTERN, maxlength: 64, autocomplete: "off" }), t("users.team_hint")),
    el("button", { type: "submit" }, t("users.team_add")));
    return form;
  }

  teamsSection(ctx) {
    return el("section", { class: "teams" },
      el("h3", {}, t("users.teams")),
      el("ul", { class: "team-list" }, this.teams.map((name) => el("li", { "data-team": name },
        el("span", {}, teamName(name)), name !== teamName(name) ? el("code", { class: "muted" }, ` ${name}`) : null,
        el("button", { type: "button", "data-action": "remove-team", onclick: () => this.run(ctx, t("users.team_remove"), async () => {
          await usersApi.removeTeam(name);
          return t("users.team_removed", { name });
        }) }, t("users.team_remove"))))),
      this.keep("add-team", (key) => this.teamForm(ctx, key)));
  }

  draw(ctx) {
    this.drawn.clear();
    this.messageNode = el("p", { class: "users-message", hidden: true });
    const page = el("div", { class: "users-page" },
      el("div", { class: "page-head" }, el("h2", {}, t("users.title"))),
      this.messageNode,
      el("ul", { class: "user-list" }, this.users.map((user) => this.userRow(ctx, user))),
      this.keep("add-user", (key) => this.addForm(ctx, key)),
      this.teamsSection(ctx));
    for (const key of this.forms.keys()) {
      if (!this.drawn.has(key)) this.forms.delete(key); // a user gone
    }
    if (this.message) this.show(this.message);
    return page;
  }
}
