// The routes of the admins' users screen (docs/api.md, "Users"): users and the managed team list.
"use strict";

import { request } from "./api.js";

const user = (name) => `/users/${encodeURIComponent(name)}`;

export const usersApi = {
  list: () => request("GET", "/users"),
  /** {username, password, role, display_name?, team?, buildings?, sites?} */
  add: (body) => request("POST", "/users", { body }),
  disable: (name) => request("POST", `${user(name)}/disable`),
  enable: (name) => request("POST", `${user(name)}/enable`),
  unlock: (name) => request("POST", `${user(name)}/unlock`),
  /** A new password for a user who forgot theirs (their sessions end). */
  setPassword: (name, password) => request("PUT", `${user(name)}/password`, { body: { password } }),
  /** {role, team?, buildings?, sites?} */
  setRole: (name, body) => request("PUT", `${user(name)}/role`, { body }),
  setBuildings: (name, buildings) => request("PUT", `${user(name)}/buildings`, { body: { buildings } }),
  /** The whole sites a user is limited to (a steward's beside their buildings); [] = none. */
  setSites: (name, sites) => request("PUT", `${user(name)}/sites`, { body: { sites } }),
  teams: () => request("GET", "/teams"),
  addTeam: (name) => request("POST", "/teams", { body: { name } }),
  removeTeam: (name) => request("DELETE", `/teams/${encodeURIComponent(name)}`),
};
