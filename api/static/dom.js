// Small DOM helpers: build elements without innerHTML, so data from the API is never parsed as markup.
"use strict";

/** el("div", {class: "x", onclick: fn}, child, "text") */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}
