// The sign-in form; on success the app takes the user to their role's first page.
"use strict";

import { login } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";

/** A 429's wait in words (the account's back-off or the client's limit), for any form that
 * tries a password. */
export function lockedText(error) {
  return t("login.locked", { minutes: Math.max(1, Math.ceil((error.retryAfterS ?? 60) / 60)) });
}

export class LoginView {
  constructor({ noticeKey = null } = {}) {
    this.noticeKey = noticeKey;
    this.error = null;
    this.username = "";
  }

  title = () => t("login.title");

  async load() {}

  failure(error) {
    if (error.status === 401) return t("login.failed");
    if (error.status === 429) return lockedText(error);
    return t("login.error", { error: error.message });
  }

  draw(ctx) {
    const username = el("input", { name: "username", autocomplete: "username", required: true, value: this.username, autocapitalize: "none" });
    const password = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const submit = el("button", { type: "submit" }, t("login.submit"));
    const form = el("form", { class: "login", novalidate: false },
      el("h2", {}, t("login.title")),
      this.error || this.noticeKey
        ? el("p", { class: "notice", role: "alert" }, this.error ? this.failure(this.error) : t(this.noticeKey))
        : null,
      el("label", {}, t("login.username"), username),
      el("label", {}, t("login.password"), password),
      submit);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.username = username.value.trim();
      submit.disabled = true;
      try {
        const user = await login(this.username, password.value);
        ctx.signedIn(user);
      } catch (error) {
        this.error = error;
        ctx.redraw();
      }
    });
    queueMicrotask(() => (this.username ? password : username).focus());
    return form;
  }
}
