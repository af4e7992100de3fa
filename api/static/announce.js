// New critical work orders announce themselves on an open page: a short tone (WebAudio, no
// sound file; the user can turn it off), the browser's notification when permitted, the count
// in the tab title ("(1) Facility Monitor") and a line in a live region for screen readers.
// The count goes back to zero when the user next touches the page.
"use strict";

import { el } from "./dom.js";
import { t } from "./i18n.js";
import { orderTitle } from "./titles.js";

const SOUND_KEY = "facility.sound";
const TONES = [[880, 0], [660, 0.22]];
const TONE_S = 0.18;

export class Announcer {
  /** `where(buildingId)`: the site to name with a new order (several sites), else null. */
  constructor({ onCount, where = () => null }) {
    this.onCount = onCount;
    this.where = where;
    this.known = new Set();
    this.baseline = false;
    this.unseen = 0;
    this.audio = null;
    // Browsers start audio only after a gesture: the first touch of the page unlocks it.
    const touched = () => {
      this.unlockAudio();
      if (this.unseen) {
        this.unseen = 0;
        this.onCount(0);
      }
    };
    // A click, not a pointerdown: the banner going away must not move what is being clicked.
    document.addEventListener("click", touched, true);
    document.addEventListener("keydown", touched, true);
  }

  get soundOn() {
    try {
      return localStorage.getItem(SOUND_KEY) !== "off";
    } catch {
      return true;
    }
  }

  setSound(on) {
    try {
      localStorage.setItem(SOUND_KEY, on ? "on" : "off");
    } catch {
      // Private mode: the choice lasts for this page only.
    }
  }

  unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    this.audio ??= new Context();
    if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
  }

  /** The critical orders a list shows: the first list is what was there already; any order
   * after it is new (the board's polling path, when there is no event stream). */
  consider(orders) {
    const critical = orders.filter((o) => o.severity === "critical" && o.status === "open");
    if (!this.baseline) {
      this.baseline = true;
      for (const o of critical) this.known.add(o.id);
      return;
    }
    for (const o of critical) {
      this.announce({ work_order_id: o.id, title: o.title, title_zh: o.title_zh, building_id: o.building_id });
    }
  }

  /** A live `work_order` event: a critical order just created. */
  event(data) {
    if (data?.event === "created" && data.severity === "critical") this.announce(data);
  }

  announce(order) {
    if (this.known.has(order.work_order_id)) return;
    this.known.add(order.work_order_id);
    this.unseen += 1;
    this.onCount(this.unseen);
    const words = { id: order.work_order_id, title: orderTitle(order) ?? "", site: this.where(order.building_id) };
    const text = t(words.site ? "announce.new_critical_at" : "announce.new_critical", words);
    document.getElementById("announce")?.replaceChildren(el("span", { "data-work-order": order.work_order_id }, text));
    if (this.soundOn) this.beep();
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(t("app.title"), { body: text, tag: `work-order-${order.work_order_id}` });
      } catch {
        // Some browsers allow notifications only from a service worker: the title still counts.
      }
    }
  }

  beep() {
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const start = audio.currentTime;
    for (const [hz, at] of TONES) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, start + at);
      gain.gain.exponentialRampToValueAtTime(0.25, start + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + at + TONE_S);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + at);
      tone.stop(start + at + TONE_S + 0.02);
    }
  }
}

/** The header's sound switch and notification button for maintenance staff. */
export function announceControls(announcer) {
  const sound = document.getElementById("sound");
  const notify = document.getElementById("notify");
  const show = () => {
    sound.setAttribute("aria-pressed", String(announcer.soundOn));
    sound.textContent = t(announcer.soundOn ? "announce.sound_on" : "announce.sound_off");
    notify.hidden = !("Notification" in window) || Notification.permission !== "default";
    notify.textContent = t("announce.notify");
  };
  sound.onclick = () => {
    announcer.setSound(!announcer.soundOn);
    show();
  };
  notify.onclick = () => Notification.requestPermission().then(show, show);
  return show;
}
