// A work order's title in the dashboard's language: the rule pack's 中文 title when the page is
// in 中文 and the order has one (orders filed before 0010 do not), else the English one.
"use strict";

import { language } from "./i18n.js";

/** `order` is a work order, or a live `work_order` event (both carry title and title_zh). */
export function orderTitle(order) {
  return (language() === "zh-CN" && order.title_zh) || order.title;
}
