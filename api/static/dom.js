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

/** What the user is in the middle of on elements marked `data-keep="<key>"`: a <details> they
 * opened, text they typed and not yet sent, where the caret was. A live redraw rebuilds the
 * page from data; without this a steward typing a note would lose it to the next reading. */
export function keptState(root) {
  const kept = new Map();
  for (const node of root.querySelectorAll("[data-keep]")) {
    const state = { focused: node === document.activeElement };
    if (node instanceof HTMLDetailsElement) state.open = node.open;
    // Only text the user changed from what was drawn: a value the data sets is drawn anew.
    const typed = node instanceof HTMLTextAreaElement
      || (node instanceof HTMLInputElement && ["text", "search"].includes(node.type));
    if (typed && node.value !== node.defaultValue) {
      state.value = node.value;
      state.selection = [node.selectionStart, node.selectionEnd, node.selectionDirection];
    }
    kept.set(node.dataset.keep, state);
  }
  return kept;
}

/** The element focused inside `root` and its caret, put back by the function returned (when a
 * redraw moved it into the new page: a kept form, e.g. the users screen's). Moving a node
 * blurs it, and keys typed meanwhile went nowhere: a live redraw ate an admin's keystrokes. */
export function focusIn(root) {
  const node = document.activeElement;
  if (!node || node === document.body || !root.contains(node)) return null;
  let selection = null;
  try {
    if (node.selectionStart !== null && node.selectionStart !== undefined) {
      selection = [node.selectionStart, node.selectionEnd, node.selectionDirection];
    }
  } catch {
    selection = null; // inputs without a caret (checkbox, number) throw or answer null
  }
  return () => {
    if (document.activeElement === node || !root.contains(node)) return;
    node.focus({ preventScroll: true });
    if (selection) node.setSelectionRange(...selection);
  };
}

/** Put back what `keptState` took, on the new elements with the same keys. */
export function restoreKept(root, kept) {
  for (const node of root.querySelectorAll("[data-keep]")) {
    const state = kept.get(node.dataset.keep);
    if (!state) continue;
    if (state.open !== undefined) node.open = state.open;
    if (state.value !== undefined) node.value = state.value;
    if (state.focused) node.focus({ preventScroll: true });
    if (state.focused && state.selection) node.setSelectionRange(...state.selection);
  }
}
