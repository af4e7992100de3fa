// A user's own account (every role): change the password, sign out on every device.
// The rules (length, the current password, back-off) are the server's; its answer is shown in words.
"use strict";

import { changePassword, logoutEverywhere } from "./api.js";
import { el } from "./dom.js";
import { language, t } from "./i18n.js";
import { lockedText } from "./view-login.js";
import { MAX_PASSWORD, MIN_PASSWORD, field } from "./view-users.js";

export class AccountView {
  constructor() {
    this.message = null;
    this.form = null;
    this.formLanguage = null;
  }

  title = () => t("account.title");

  /** Nothing on the live stream is about the account. */
  wants = () => false;

  async load() {}

  /** `words()` makes the text: said again in the other language after a switch. */
  say(words, error) {
    this.message = { words, error };
    if (!this.messageNode) return;
    this.messageNode.replaceChildren(words());
    this.messageNode.className = error ? "users-message error" : "users-message ok";
    this.messageNode.setAttribute("role", error ? "alert" : "status");
    this.messageNode.hidden = false;
  }

  failure(error) {
    if (error.status === 403) return t("account.wrong_current");
    if (error.status === 429) return lockedText(error);
    return t("account.error", { error: error.message });
  }

  passwordForm() {
    const input = (name, autocomplete, extra = {}) =>
      el("input", { name, type: "password", required: true, autocomplete, maxlength: MAX_PASSWORD, ...extra });
    const current = input("current_password", "current-password");
    const fresh = input("new_password", "new-password", { minlength: MIN_PASSWORD });
    const again = input("repeat_password", "new-password", { minlength: MIN_PASSWORD });
    const submit = el("button", { type: "submit" }, t("account.change"));
    const form = el("form", { class: "account-password", "data-form": "change-password" },
      el("h3", {}, t("account.password")),
      el("div", { class: "users-grid" },
        field(t("account.current"), current),
        field(t("account.new"), fresh, t("users.password_hint", { min: MIN_PASSWORD, max: MAX_PASSWORD })),
        field(t("account.repeat"), again)),
      el("p", { class: "muted" }, t("account.ends_sessions")),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (fresh.value !== again.value) {
        this.say(() => t("account.mismatch"), true);
        again.focus();
        return;
      }
      submit.disabled = true;
      try {
        await changePassword(current.value, fresh.value);
        form.reset();
        this.say(() => t("account.changed"), false);
      } catch (error) {
        this.say(() => this.failure(error), true);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  draw(ctx) {
    const user = ctx.user();
    this.messageNode = el("p", { class: "users-message", hidden: true });
    // Kept over redraws (what is typed stays); made anew in the other language.
    if (!this.form || this.formLanguage !== language()) {
      this.form = this.passwordForm();
      this.formLanguage = language();
    }
    const everywhere = el("button", { type: "button", "data-action": "logout-all", onclick: async () => {
      try {
        await logoutEverywhere();
        ctx.signedOutEverywhere();
      } catch (error) {
        this.say(() => t("account.error", { error: error.message }), true);
      }
    } }, t("account.logout_all"));
    const page = el("div", { class: "users-page account-page" },
      el("div", { class: "page-head" }, el("h2", {}, t("account.title"))),
      el("p", { class: "account-who" }, [user.display_name, user.username, t(`role.${user.role}`)]
        .filter((part, i, all) => part && all.indexOf(part) === i).join(" · ")),
      this.messageNode,
      this.form,
      el("section", { class: "account-sessions" },
        el("h3", {}, t("account.sessions")),
        el("p", { class: "muted" }, t("account.logout_all_hint")),
        everywhere));
    if (this.message) this.say(this.message.words, this.message.error);
    return page;
  }
}
