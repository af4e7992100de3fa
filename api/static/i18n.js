// Every string the dashboard shows, in English and Chinese; the reader's choice is remembered.
"use strict";

const STORAGE_KEY = "facility.lang";
export const LANGUAGES = ["en", "zh-CN"];

const en = {
  "app.title": "Facility Monitor",
  "lang.switch": "中文",
  "lang.switch.title": "切换到中文",
  "nav.buildings": "Buildings",
  "nav.board": "Work orders",
  "nav.logout": "Sign out",
  "login.title": "Sign in",
  "login.username": "User name",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.failed": "Wrong user name or password.",
  "login.locked": "Too many failed attempts; try again in {minutes} min.",
  "login.error": "Sign-in is not available: {error}",
  "session.expired": "Your session ended; please sign in again.",
  "role.steward": "Steward",
  "role.technician": "Technician",
  "role.dispatcher": "Dispatcher",
  "role.admin": "Administrator",
  "live.sse": "Live",
  "live.polling": "Refreshing every {seconds} s",
  "live.offline": "Connection lost; retrying",
  "updated": "Updated {time}",
  "loading": "Loading…",
  "error.load": "Could not load: {error}",
  "error.action": "Could not {action}: {error}",
  "empty.buildings": "No buildings are assigned to you.",
  "empty.orders": "No work orders here.",
  "status.ok": "OK",
  "status.warning": "Warning",
  "status.alarm": "Fault",
  "status.fault": "Fault",
  "status.offline": "Offline",
  "status.unknown": "No data",
  "kind.elevator": "Elevators",
  "kind.lighting": "Lighting",
  "kind.gate": "Gates",
  "kind.pump": "Pumps",
  "kind.one.elevator": "Elevator",
  "kind.one.lighting": "Lighting",
  "kind.one.gate": "Gate",
  "kind.one.pump": "Pump",
  "buildings.title": "My buildings",
  "buildings.open_orders": "Open work orders: {count}",
  "building.back": "All buildings",
  "device.back": "Back to {name}",
  "device.last_seen": "Last seen",
  "device.never": "never",
  "device.values": "Latest values",
  "device.history": "Last {hours} h",
  "device.no_history": "No readings in this range.",
  "device.range": "Range",
  "device.open_orders": "Open work orders",
  "device.history_error": "History is not available: {error}",
  "board.title": "Work orders",
  "board.filter.severity": "Severity",
  "board.filter.building": "Building",
  "board.filter.all": "All",
  "board.sort": "Sort by",
  "board.sort.sla": "SLA time left",
  "board.sort.severity": "Severity",
  "board.sort.age": "Age",
  "board.count": "{count} shown",
  "board.more": "{total} active in all; the {limit} newest are on the board, filter to see others",
  "order.status.open": "Open",
  "order.status.acknowledged": "Acknowledged",
  "order.status.in_progress": "In progress",
  "order.status.on_hold": "On hold",
  "order.status.resolved": "Resolved",
  "order.status.closed": "Closed",
  "order.status.cancelled": "Cancelled",
  "order.action.acknowledged": "Acknowledge",
  "order.action.in_progress": "Start",
  "order.action.on_hold": "Put on hold",
  "order.action.resolved": "Resolve",
  "order.action.done": "{action}: done",
  "severity.critical": "Critical",
  "severity.major": "Major",
  "severity.minor": "Minor",
  "severity.warning": "Warning",
  "sla.left": "{time} left",
  "sla.overdue": "overdue {time}",
  "sla.none": "no SLA",
  "sla.respond": "Respond by",
  "sla.resolve": "Resolve by",
  "order.back": "Back to the board",
  "order.since": "since {time}",
  "order.fault_started": "Fault started",
  "order.detected": "Detected",
  "order.cleared": "Fault cleared",
  "order.building": "Building",
  "order.device": "Device",
  "order.assignee": "Assignee",
  "order.team": "Team",
  "order.unassigned": "unassigned",
  "order.history": "History",
  "order.comments": "Comments",
  "order.no_comments": "No comments yet.",
  "order.trend": "Trend before the fault",
  "order.trend_none": "This order has no device trend.",
  "order.trend_window": "{hours} h before the fault",
  "order.category": "Category",
  "order.category.equipment": "Equipment",
  "order.category.sensor": "Sensor",
  "order.category.report": "Report",
  "event.created": "Created",
  "event.transition": "{from} → {to}",
  "event.assigned": "Assigned to {to}",
  "event.comment": "Comment",
  "event.cleared": "Fault cleared",
  "event.recurred": "Fault came back",
  "event.reopened": "Reopened",
  "event.escalated": "Escalated",
  "event.root_cause": "Root cause raised",
  "event.finding": "Related finding",
  "time.s": "{n} s",
  "time.min": "{n} min",
  "time.h": "{n} h {m} min",
  "time.d": "{n} d {h} h",
  "time.ago": "{time} ago",
  "bool.true": "yes",
  "bool.false": "no",
  "field.running": "Running",
  "field.direction": "Direction",
  "field.floor": "Floor",
  "field.level_error_mm": "Levelling error",
  "field.speed_mps": "Speed",
  "field.door_state": "Door",
  "field.door_open_time_s": "Door open time",
  "field.door_reopen_count": "Door re-openings",
  "field.load_kg": "Load",
  "field.motor_current_a": "Motor current",
  "field.motor_temp_c": "Motor temperature",
  "field.vibration_mm_s": "Vibration",
  "field.alarm_button": "Alarm button",
  "field.alarm_test_ok": "Alarm self-test OK",
  "field.fault_code": "Fault code",
  "field.commanded_on": "Commanded on",
  "field.current_a": "Current",
  "field.voltage_v": "Voltage",
  "field.power_w": "Power",
  "field.lamp_failures": "Failed lamps",
  "field.lux": "Ambient light",
  "field.emergency_battery_ok": "Emergency battery OK",
  "field.door_open": "Open",
  "field.open_duration_s": "Open for",
  "field.forced_open": "Forced open",
  "field.held_open": "Held open",
  "field.granted": "Access granted",
  "field.denied": "Access denied",
  "field.suction_bar": "Suction pressure",
  "field.discharge_bar": "Discharge pressure",
  "field.flow_m3h": "Flow",
  "field.vfd_hz": "Drive frequency",
  "field.tank_level_pct": "Tank level",
  "field.leak": "Leak",
  "enum.direction.0": "stopped",
  "enum.direction.1": "up",
  "enum.direction.2": "down",
  "enum.door_state.0": "closed",
  "enum.door_state.1": "opening",
  "enum.door_state.2": "open",
  "enum.door_state.3": "closing",
};

const zh = {
  "app.title": "设施监控",
  "lang.switch": "English",
  "lang.switch.title": "Switch to English",
  "nav.buildings": "楼栋",
  "nav.board": "工单",
  "nav.logout": "退出",
  "login.title": "登录",
  "login.username": "用户名",
  "login.password": "密码",
  "login.submit": "登录",
  "login.failed": "用户名或密码错误。",
  "login.locked": "失败次数过多，请 {minutes} 分钟后再试。",
  "login.error": "暂时无法登录：{error}",
  "session.expired": "登录已过期，请重新登录。",
  "role.steward": "楼栋管家",
  "role.technician": "维修技师",
  "role.dispatcher": "调度员",
  "role.admin": "管理员",
  "live.sse": "实时",
  "live.polling": "每 {seconds} 秒刷新",
  "live.offline": "连接中断，正在重试",
  "updated": "更新于 {time}",
  "loading": "加载中…",
  "error.load": "加载失败：{error}",
  "error.action": "无法{action}：{error}",
  "empty.buildings": "您还没有负责的楼栋。",
  "empty.orders": "这里没有工单。",
  "status.ok": "正常",
  "status.warning": "警告",
  "status.alarm": "故障",
  "status.fault": "故障",
  "status.offline": "离线",
  "status.unknown": "无数据",
  "kind.elevator": "电梯",
  "kind.lighting": "照明",
  "kind.gate": "门禁",
  "kind.pump": "水泵",
  "kind.one.elevator": "电梯",
  "kind.one.lighting": "照明",
  "kind.one.gate": "门禁",
  "kind.one.pump": "水泵",
  "buildings.title": "我的楼栋",
  "buildings.open_orders": "未完成工单：{count}",
  "building.back": "全部楼栋",
  "device.back": "返回 {name}",
  "device.last_seen": "最后上报",
  "device.never": "从未",
  "device.values": "最新数值",
  "device.history": "最近 {hours} 小时",
  "device.no_history": "该时间段没有读数。",
  "device.range": "时间范围",
  "device.open_orders": "未完成工单",
  "device.history_error": "历史数据不可用：{error}",
  "board.title": "工单",
  "board.filter.severity": "严重程度",
  "board.filter.building": "楼栋",
  "board.filter.all": "全部",
  "board.sort": "排序",
  "board.sort.sla": "SLA 剩余时间",
  "board.sort.severity": "严重程度",
  "board.sort.age": "时长",
  "board.count": "共 {count} 个",
  "board.more": "共有 {total} 个进行中，看板只显示最新的 {limit} 个，请用筛选查看其他",
  "order.status.open": "待处理",
  "order.status.acknowledged": "已确认",
  "order.status.in_progress": "处理中",
  "order.status.on_hold": "挂起",
  "order.status.resolved": "已解决",
  "order.status.closed": "已关闭",
  "order.status.cancelled": "已取消",
  "order.action.acknowledged": "确认",
  "order.action.in_progress": "开始处理",
  "order.action.on_hold": "挂起",
  "order.action.resolved": "解决",
  "order.action.done": "{action}：已完成",
  "severity.critical": "紧急",
  "severity.major": "严重",
  "severity.minor": "一般",
  "severity.warning": "提示",
  "sla.left": "剩余 {time}",
  "sla.overdue": "已超时 {time}",
  "sla.none": "无 SLA",
  "sla.respond": "响应期限",
  "sla.resolve": "解决期限",
  "order.back": "返回工单看板",
  "order.since": "始于 {time}",
  "order.fault_started": "故障开始",
  "order.detected": "检测时间",
  "order.cleared": "故障消除",
  "order.building": "楼栋",
  "order.device": "设备",
  "order.assignee": "负责人",
  "order.team": "班组",
  "order.unassigned": "未分配",
  "order.history": "处理记录",
  "order.comments": "备注",
  "order.no_comments": "暂无备注。",
  "order.trend": "故障前趋势",
  "order.trend_none": "此工单没有设备趋势。",
  "order.trend_window": "故障前 {hours} 小时",
  "order.category": "类别",
  "order.category.equipment": "设备",
  "order.category.sensor": "传感器",
  "order.category.report": "报修",
  "event.created": "创建",
  "event.transition": "{from} → {to}",
  "event.assigned": "指派给 {to}",
  "event.comment": "备注",
  "event.cleared": "故障消除",
  "event.recurred": "故障复现",
  "event.reopened": "重新打开",
  "event.escalated": "已升级",
  "event.root_cause": "已生成根因工单",
  "event.finding": "相关发现",
  "time.s": "{n} 秒",
  "time.min": "{n} 分钟",
  "time.h": "{n} 小时 {m} 分",
  "time.d": "{n} 天 {h} 小时",
  "time.ago": "{time}前",
  "bool.true": "是",
  "bool.false": "否",
  "field.running": "运行中",
  "field.direction": "方向",
  "field.floor": "楼层",
  "field.level_error_mm": "平层误差",
  "field.speed_mps": "速度",
  "field.door_state": "轿门",
  "field.door_open_time_s": "开门时间",
  "field.door_reopen_count": "重开门次数",
  "field.load_kg": "载重",
  "field.motor_current_a": "电机电流",
  "field.motor_temp_c": "电机温度",
  "field.vibration_mm_s": "振动",
  "field.alarm_button": "报警按钮",
  "field.alarm_test_ok": "报警自检正常",
  "field.fault_code": "故障代码",
  "field.commanded_on": "指令开启",
  "field.current_a": "电流",
  "field.voltage_v": "电压",
  "field.power_w": "功率",
  "field.lamp_failures": "故障灯具",
  "field.lux": "环境照度",
  "field.emergency_battery_ok": "应急电池正常",
  "field.door_open": "开启",
  "field.open_duration_s": "开启时长",
  "field.forced_open": "强行打开",
  "field.held_open": "长时间未关",
  "field.granted": "允许通行",
  "field.denied": "拒绝通行",
  "field.suction_bar": "进水压力",
  "field.discharge_bar": "出水压力",
  "field.flow_m3h": "流量",
  "field.vfd_hz": "变频频率",
  "field.tank_level_pct": "水箱液位",
  "field.leak": "漏水",
  "enum.direction.0": "停止",
  "enum.direction.1": "上行",
  "enum.direction.2": "下行",
  "enum.door_state.0": "关闭",
  "enum.door_state.1": "正在开门",
  "enum.door_state.2": "打开",
  "enum.door_state.3": "正在关门",
};

export const TABLES = { en, "zh-CN": zh };

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

function initial() {
  const choice = stored();
  if (LANGUAGES.includes(choice)) return choice;
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

let current = initial();

export function language() {
  return current;
}

export function setLanguage(lang) {
  if (!LANGUAGES.includes(lang)) throw new Error(`unknown language ${lang}`);
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Private mode: the choice lasts for this page only.
  }
  document.documentElement.lang = lang;
}

/** The string for `key` in the current language, with {name} placeholders filled in. */
export function t(key, params = {}) {
  const text = TABLES[current][key] ?? TABLES.en[key];
  if (text === undefined) {
    console.warn(`i18n: no string for ${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

/** Like t(), but a key without a string gives `fallback` (for names that come from data). */
export function tOr(key, fallback) {
  return TABLES[current][key] ?? TABLES.en[key] ?? fallback;
}

/** Fill every element marked data-i18n (text) or data-i18n-title / -placeholder. */
export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
}

/** A duration in ms as "3 min", "2 h 5 min", "1 d 4 h". */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return t("time.s", { n: s });
  const min = Math.floor(s / 60);
  if (min < 60) return t("time.min", { n: min });
  const h = Math.floor(min / 60);
  if (h < 24) return t("time.h", { n: h, m: min % 60 });
  return t("time.d", { n: Math.floor(h / 24), h: h % 24 });
}

export function clockTime(ms) {
  return new Date(ms).toLocaleTimeString(current, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function dateTime(ms) {
  return new Date(ms).toLocaleString(current, { dateStyle: "short", timeStyle: "medium" });
}
