// The residents' report form behind a unit's QR code: phone first, English and 中文, a photo
// optional (checked here for a quick answer, and again by the server from its bytes).
"use strict";

import { language, setLanguage, t, translatePage } from "./i18n.js";

const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
const form = document.getElementById("report");
const problem = document.getElementById("problem");
const send = document.getElementById("send");
const maxBytes = Number(form.dataset.photoMax);
const maxMb = () => String(Math.round((maxBytes / 1048576) * 10) / 10);

function translate() {
  translatePage();
  document.documentElement.lang = language();
  for (const option of form.querySelectorAll("option[data-en]")) {
    option.textContent = language() === "zh-CN" ? option.dataset.zh : option.dataset.en;
  }
  document.getElementById("photo-hint").textContent = t("report.photo.hint", { mb: maxMb() });
}

function show(text) {
  problem.textContent = text;
  problem.hidden = !text;
}

/** What is wrong with the form before sending it, in the reader's language, or "". */
function check() {
  if (form.description.value.trim().length < 5) return t("report.error.short");
  const photo = form.photo.files[0];
  if (photo && !PHOTO_TYPES.includes(photo.type)) return t("report.error.type");
  if (photo && photo.size > maxBytes) return t("report.error.too_large", { mb: maxMb() });
  return "";
}

async function answerText(response) {
  if (response.status === 404) return t("report.error.code");
  if (response.status === 413) return t("report.error.too_large", { mb: maxMb() });
  if (response.status === 415) return t("report.error.type");
  if (response.status === 429) {
    const minutes = Math.max(1, Math.ceil(Number(response.headers.get("Retry-After") || 60) / 60));
    return t("report.error.busy", { minutes });
  }
  let detail = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail ?? detail;
  } catch {
    // Not JSON: keep the status line.
  }
  return t("report.error.failed", { error: detail });
}

async function submit(event) {
  event.preventDefault();
  const wrong = check();
  show(wrong);
  if (wrong) return;
  const body = new FormData(form);
  body.set("code", form.dataset.code);
  if (!form.photo.files.length) body.delete("photo");
  send.disabled = true;
  send.textContent = t("report.sending");
  try {
    const response = await fetch("/api/v1/reports/form", { method: "POST", body, headers: { Accept: "application/json" } });
    if (!response.ok) {
      show(await answerText(response));
      return;
    }
    const created = await response.json();
    form.hidden = true;
    const done = document.getElementById("done");
    done.dataset.workOrder = created.work_order_id;
    document.getElementById("done-body").textContent = t("report.done.body", { id: created.work_order_id });
    done.hidden = false;
  } catch (error) {
    show(t("report.error.failed", { error: error.message }));
  } finally {
    send.disabled = false;
    send.textContent = t("report.submit");
  }
}

document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "en" ? "zh-CN" : "en");
  translate();
});
document.getElementById("another").addEventListener("click", () => {
  form.reset();
  show("");
  document.getElementById("done").hidden = true;
  form.hidden = false;
});
form.addEventListener("submit", submit);
translate();
