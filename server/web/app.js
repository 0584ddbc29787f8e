// Floorwatch live floor page. Plain modern JS, no build step, no dependencies.
// Live data: alarms over server-sent events (fetch-based, so the bearer token stays in a header),
// devices / health / inspections / evacuations polled every few seconds and refreshed on alarm events.
"use strict";

// ---- strings (every UI string in both languages) ---------------------------------------------------
const STRINGS = {
  zh: {
    title: "楼层安全监控", floor_map: "楼层平面图", active_alarms: "当前告警", no_alarms: "无告警 · 全部正常",
    inspections_today: "今日待办巡检", system_health: "系统状态", token: "访问令牌", sign_in: "登录",
    cancel: "取消", confirm: "确定", reason: "原因", note_optional: "备注(可选)", shelve_until: "搁置至", close_panel: "关闭面板",
    ack: "确认", shelve: "搁置", close: "关闭告警", live: "实时", connecting: "连接中…",
    reconnecting: "重新连接中…", offline: "离线", signed_out: "未登录", unauthorized: "令牌无效或已过期,请重新登录",
    evac_active: "疏散进行中", drill_active: "【演练】疏散演练进行中", roll_call: "点名", accounted: "已撤离/安全", missing: "仍在楼内", total: "应到",
    unaccounted: "去向未确认", all_accounted: "全部人员已撤离或确认安全",
    roll_names: "名单({n} 人)",
    drill_legend: "演练(斜纹)", not_found: "找不到 {what}", evacuation: "疏散", evac_over: "已解除",
    drill: "演练", visitor: "访客", roll_forbidden: "点名需领班及以上权限",
    evac_stale: "{t} 后未更新:无法读取服务器", alarms_cut: "未结告警超过 {n} 条:此处只列出最严重的 {n} 条", evac_also: "同时进行:", evac_word: "疏散",
    permissions_unknown: "权限未加载:所有操作按钮均显示,由服务器决定是否允许",
    since: "开始于", no_inspections: "今日无待办巡检", overdue: "已逾期", due: "截止",
    broker: "消息代理", sql: "数据库", timeseries: "时序库", edges: "边缘网关在线", ingest: "接收消息",
    up: "正常", down: "故障", zone: "区域", device: "设备", kind: "类型", value: "读数", last_seen: "最后上报",
    online: "在线", offline_dev: "离线", unknown: "未知", alarms_here: "相关告警", none_here: "无告警",
    devices_here: "区域内设备", chart_last_hour: "最近一小时", no_data: "最近一小时无数据",
    reason_required: "请填写原因", until_required: "请选择搁置结束时间", shelve_title: "搁置告警",
    close_title: "关闭告警", ack_title: "确认告警", denied: "无权执行", failed: "操作失败",
    legend_none: "正常", acknowledged_by: "确认人", value_label: "值", floor: "楼层",
    value_raised: "触发值 {v}", value_peak: "最严重 {v}", value_cleared: "恢复时 {v}", value_now: "当前 {v}",
    door_open: "门开", door_closed: "门关", locked: "已锁", unlocked: "未锁", smoke: "烟雾!", smoke_ok: "无烟",
    leak: "漏水!", leak_ok: "无漏水", fault: "故障", battery_low: "电量低", no_map: "该区域未配置平面图轮廓",
    hold_cut: "暂缓断电", hold_title: "暂缓断电(插座保持通电)",
    mark_safe: "标记安全", safe_title: "确认此人已安全?", raised_again: "再次触发 {t}(首次 {first})",
    cut_pending: "若不暂缓,将于 {at} 断开插座电源", cut_held: "断电已由 {by} 暂缓:{why}",
    cut_cutting: "断电指令已于 {at} 发出,等待网关确认", cut_done: "已于 {at} 断开插座电源,网关已确认",
    cut_failed: "断电失败:{why}", cut_cancelled: "断电已取消:{why}",
    auto_cut_cutting: "自动断电:插座 {device} — 等待插座确认(指令 {at} 发出)",
    auto_cut_done: "自动断电:插座 {device} — 已于 {at} 断开", auto_cut_failed: "自动断电:插座 {device} — 失败:{why}",
    auto_cut_summary: "自动断电:", auto_cut_n_done: "{n} 个已断开", auto_cut_n_failed: "{n} 个失败",
    auto_cut_n_cutting: "{n} 个等待确认",
    whole_floor: "← 整层", more_in_list: "另有 {n} 个设备见详情列表",
    life_safety: "生命安全", latest: "最近", all_severities: "全部级别", all_zones: "全部区域", all_families: "全部类别",
    shown: "显示 {n} / {of}", filter_severity: "级别", filter_zone: "区域", filter_family: "类别",
    history_open: "巡检记录", history_title: "巡检记录(最近 30 天)", history_csv: "下载 CSV",
    history_report: "打印版报告", history_empty: "最近 30 天无巡检记录", history_findings: "{n} 项不合格",
    history_no_findings: "无不合格项", history_late: "逾期完成", history_overdue: "逾期未完成", whole_site: "全场",
    hidden_person: "(已隐藏)",
  },
  en: {
    title: "Floor safety", floor_map: "Floor map", active_alarms: "Active alarms", no_alarms: "No active alarms · all clear",
    inspections_today: "Inspections due today", system_health: "System health", token: "Access token", sign_in: "Sign in",
    cancel: "Cancel", confirm: "Confirm", reason: "Reason", note_optional: "Note (optional)", shelve_until: "Shelve until", close_panel: "Close panel",
    ack: "Acknowledge", shelve: "Shelve", close: "Close", live: "Live", connecting: "Connecting…",
    reconnecting: "Reconnecting…", offline: "Offline", signed_out: "Not signed in", unauthorized: "Token invalid or expired — sign in again",
    evac_active: "EVACUATION IN PROGRESS", drill_active: "DRILL: evacuation drill in progress", roll_call: "Roll call", accounted: "out or safe", missing: "Still inside", total: "Expected",
    unaccounted: "Not accounted for", all_accounted: "Everyone is out or safe",
    roll_names: "Names ({n})",
    drill_legend: "Drill (hatched)", not_found: "{what} not found", evacuation: "Evacuation", evac_over: "all clear",
    drill: "DRILL", visitor: "visitor", roll_forbidden: "Roll call needs a shift lead or above",
    evac_stale: "not updated since {t}: the server cannot be read", alarms_cut: "More than {n} alarms are open: the {n} most severe are listed", evac_also: "Also in progress:", evac_word: "EVACUATION",
    permissions_unknown: "Permissions not loaded: every action button is shown and the server decides",
    since: "since", no_inspections: "No inspections due today", overdue: "overdue", due: "due",
    broker: "Broker", sql: "Database", timeseries: "Time-series store", edges: "Edges online", ingest: "Messages in",
    up: "up", down: "DOWN", zone: "Zone", device: "Device", kind: "Kind", value: "Reading", last_seen: "Last seen",
    online: "online", offline_dev: "offline", unknown: "unknown", alarms_here: "Alarms", none_here: "No alarms",
    devices_here: "Devices in this zone", chart_last_hour: "Last hour", no_data: "No data in the last hour",
    reason_required: "A reason is required", until_required: "Choose when the shelf ends", shelve_title: "Shelve alarm",
    close_title: "Close alarm", ack_title: "Acknowledge alarm", denied: "Not allowed", failed: "Failed",
    legend_none: "Normal", acknowledged_by: "acknowledged by", value_label: "value", floor: "Floor",
    value_raised: "raised at {v}", value_peak: "worst {v}", value_cleared: "cleared at {v}", value_now: "now {v}",
    door_open: "OPEN", door_closed: "closed", locked: "locked", unlocked: "unlocked", smoke: "SMOKE!", smoke_ok: "no smoke",
    leak: "LEAK!", leak_ok: "dry", fault: "fault", battery_low: "battery low", no_map: "This zone has no outline on the map",
    hold_cut: "Hold cut", hold_title: "Hold the cut (keep the plug on)",
    mark_safe: "Mark safe", safe_title: "Mark this person safe?", raised_again: "raised again {t} (first {first})",
    cut_pending: "relay OFF at {at} unless held", cut_held: "cut held by {by}: {why}",
    cut_cutting: "relay OFF sent at {at}, waiting for the edge", cut_done: "relay OFF at {at}, confirmed",
    cut_failed: "relay cut FAILED: {why}", cut_cancelled: "cut cancelled: {why}",
    auto_cut_cutting: "Power cut automatically: plug {device} — waiting for the plug (sent {at})",
    auto_cut_done: "Power cut automatically: plug {device} — done {at}",
    auto_cut_failed: "Power cut automatically: plug {device} — FAILED: {why}",
    auto_cut_summary: "power cut: ", auto_cut_n_done: "{n} done", auto_cut_n_failed: "{n} FAILED",
    auto_cut_n_cutting: "{n} waiting",
    whole_floor: "← Whole floor", more_in_list: "{n} more devices in the detail list",
    life_safety: "LIFE SAFETY", latest: "latest", all_severities: "All severities", all_zones: "All zones",
    all_families: "All kinds", shown: "showing {n} of {of}", filter_severity: "Severity", filter_zone: "Zone",
    filter_family: "Kind",
    history_open: "Inspection history", history_title: "Inspection history (last 30 days)",
    history_csv: "Download CSV", history_report: "Printable report",
    history_empty: "No inspections in the last 30 days", history_findings: "{n} failed",
    history_no_findings: "no failed items", history_late: "done late", history_overdue: "overdue, not signed",
    whole_site: "whole site", hidden_person: "(hidden)",
  },
};
const SEVERITY = {
  zh: { critical: "紧急", major: "重要", minor: "次要", warning: "提示", none: "正常" },
  en: { critical: "CRITICAL", major: "MAJOR", minor: "MINOR", warning: "WARNING", none: "OK" },
};
const STATES = {
  zh: { active: "未确认", acknowledged: "已确认", cleared_unacked: "已恢复·未确认", cleared: "已恢复",
        shelved: "已搁置", suppressed: "已抑制", closed: "已关闭" },
  en: { active: "unacknowledged", acknowledged: "acknowledged", cleared_unacked: "cleared · unacknowledged",
        cleared: "cleared", shelved: "shelved", suppressed: "suppressed", closed: "closed" },
};
/** An inspection task's status (server/domain/inspections/completion.py TaskStatus). */
const TASK_STATUS = {
  zh: { open: "待完成", done: "已完成", missed: "已错过" },
  en: { open: "open", done: "done", missed: "missed" },
};
const KINDS = {
  zh: { smart_plug: "智能插座", strip_meter: "计量插排", smoke_detector: "烟感", temp_sensor: "温湿度",
        door_controller: "门禁", mr_probe: "机房探头", leak_sensor: "漏水", siren: "声光报警", manual_call_point: "手报" },
  en: { smart_plug: "smart plug", strip_meter: "power strip", smoke_detector: "smoke detector", temp_sensor: "temperature",
        door_controller: "door", mr_probe: "machine-room probe", leak_sensor: "leak sensor", siren: "siren",
        manual_call_point: "call point" },
};
const GLYPH = { smart_plug: "P", strip_meter: "S", smoke_detector: "F", temp_sensor: "T", door_controller: "D",
                mr_probe: "M", leak_sensor: "W", siren: "!", manual_call_point: "C" };
const RANK = { critical: 4, major: 3, minor: 2, warning: 1, none: 0 };
/** States that colour the map: the condition is (or may still be) there. */
const COLOURING = new Set(["active", "acknowledged", "cleared_unacked"]);
const OPEN = new Set(["active", "acknowledged", "cleared_unacked", "shelved", "suppressed"]);
const CHART_METRICS = ["current_a", "power_w", "temperature_c", "humidity_pct", "smoke_obscuration_pct", "co_ppm",
                       "voltage_v", "device_temp_c"];
const METRICS = {
  zh: { current_a: "电流 A", power_w: "功率 W", voltage_v: "电压 V", energy_wh: "电量 Wh", power_factor: "功率因数",
        temperature_c: "温度 °C", humidity_pct: "湿度 %", smoke_obscuration_pct: "烟浓度 %", co_ppm: "CO ppm",
        device_temp_c: "设备温度 °C", battery_pct: "电量 %", rssi_dbm: "信号 dBm" },
  en: { current_a: "Current A", power_w: "Power W", voltage_v: "Voltage V", energy_wh: "Energy Wh", power_factor: "Power factor",
        temperature_c: "Temperature °C", humidity_pct: "Humidity %", smoke_obscuration_pct: "Smoke %", co_ppm: "CO ppm",
        device_temp_c: "Device temp °C", battery_pct: "Battery %", rssi_dbm: "Signal dBm" },
};
const metricText = (m) => METRICS[lang][m] ?? m;
const ROLES = {
  zh: { operator: "话务员", shift_lead: "领班", supervisor: "主管", safety_officer: "安全员", facility_manager: "物业",
        maintenance: "维修", on_site_command: "现场指挥", emergency_command: "应急指挥", admin: "管理员",
        mr_duty: "机房值班", manager: "经理", it: "信息系统", hr: "人事", reception: "前台", logistics: "后勤" },
  en: { operator: "operator", shift_lead: "shift lead", supervisor: "supervisor", safety_officer: "safety officer",
        facility_manager: "facility manager", maintenance: "maintenance", on_site_command: "on-site command",
        emergency_command: "emergency command", admin: "admin", mr_duty: "machine-room duty", manager: "manager",
        it: "IT", hr: "HR", reception: "reception", logistics: "logistics" },
};
const POLL_MS = 5000;
/** Cut states that still change without an alarm event: their alarms are re-read on every poll. */
const CUT_MOVING = new Set(["pending", "cutting"]);

// ---- state ------------------------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);
// The address's fragment: #token=… signs in (then leaves the address bar); #alarm=N and #evacuation=ev-N are a
// push's link (server/domain/notify.py, server/services/evacuation.py), opened once the page has loaded, and
// kept in sessionStorage until then, so a sign-in or a reload on the way does not lose it.
const TARGET_KEY = "floorwatch.target";
/** The push target in the address (#alarm=N, #evacuation=ev-N), or null; a #token= is stored and removed. */
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get("token");
  if (fromHash) localStorage.setItem("floorwatch.token", fromHash);
  const alarm = params.get("alarm"), evacuation = params.get("evacuation");
  const target = alarm && /^\d+$/.test(alarm) ? { type: "alarm", id: Number(alarm) }
    : evacuation ? { type: "evacuation", id: evacuation } : null;
  if (target) sessionStorage.setItem(TARGET_KEY, JSON.stringify(target));
  if (fromHash || target) history.replaceState(null, "", location.pathname + location.search);
}
readHash();
let token = localStorage.getItem("floorwatch.token");
let lang = localStorage.getItem("floorwatch.lang")
  || ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en");

const state = {
  floor: null, zones: new Map(), devices: new Map(), live: new Map(), floors: [],
  alarms: new Map(), inspections: [], health: null, evac: null, selected: null,
  evacOthers: [],  // the other active evacuations (another floor's), named under the banner
  alarmsRead: false, inspectionsRead: false, alarmsCut: false,  // read once with an accepted token: only then may they read "none"
  evacReadAt: null, evacStaleSince: null,  // when the evacuations were last read; set while they cannot be
  evacMissing: false, site: "", accountZones: [],
  permissions: null,  // GET /api/me's list; null while not loaded (unknown, unlike [] = none)
  view: null,  // the zone the map is zoomed to, or null for the floor overview
  tz: null, rules: {}, families: [],  // the site's time zone and the rule titles, from /api/floor
  expanded: new Set(), filters: { severity: "", zone: "", family: "" },
  loaded: false,  // the site (/api/floor) is loaded: a push's target can be opened
  linked: null,  // the alarm or evacuation a push's link opened, as last read (a closed one is not in `alarms`)
  rollNamesOpen: null,  // {evacuation, open}: the banner's names opened or closed by a tap
  history: null,  // the inspection history's rows (GET /api/inspections/history) while its panel is open
};
const t = (key) => STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
/** Whether the alarms shown were read with a token the server accepts (not the sign-in screen's nothing). */
const readable = () => state.alarmsRead && $("login").hidden;
const sevText = (s) => SEVERITY[lang][s] ?? s;
const stateText = (s) => STATES[lang][s] ?? s;
const kindText = (k) => KINDS[lang][k] ?? k;
/** A zone's or floor's name from the site file, its id when the site gives none. */
const zoneName = (id) => { const z = state.zones.get(id); return z ? z.name || z.id : id; };
const floorName = (id) => { const f = state.floors.find((x) => x.id === id); return f ? f.name || f.id : id; };
/** Where an alarm's subject is, in words: a device's, zone's or floor's name (an evac.notice's subject is its floor). */
const subjectName = (id) => (state.devices.has(id) ? state.devices.get(id).name || id
  : state.zones.has(id) ? zoneName(id) : floorName(id));

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** The API's answer with the bearer token in a header; a 401 shows the sign-in, any other error throws. */
async function request(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { "Authorization": "Bearer " + token,
    "Content-Type": "application/json", ...(options.headers || {}) } });
  if (response.status === 401) { showLogin(); throw new ApiError(401, t("unauthorized")); }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail
        : Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : detail;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}
const api = async (path, options = {}) => (await request(path, options)).json();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
// Times are shown in the site's time zone (from /api/floor), whatever the viewer's device is set to: a
// supervisor abroad and the floor read the same clock. An offset ("+08:00") is applied by hand when the
// browser's Intl does not take offsets as zones.
function zoned(iso, options, locale = lang === "zh" ? "zh-CN" : "en-GB") {
  const at = new Date(iso);
  const tz = state.tz;
  if (tz) {
    try { return at.toLocaleString(locale, { ...options, timeZone: tz }); } catch { /* an offset, below */ }
    const m = /^([+-])(\d{2}):(\d{2})$/.exec(tz);
    if (m) {
      const shift = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60000;
      return new Date(at.getTime() + shift).toLocaleString(locale, { ...options, timeZone: "UTC" });
    }
  }
  return at.toLocaleString(locale, options);
}
const TIME = { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
const DAY = { year: "numeric", month: "2-digit", day: "2-digit" };
const time = (iso) => (iso ? zoned(iso, TIME) : "—");
const dateTime = (iso) => (iso ? zoned(iso, { ...DAY, ...TIME }) : "—");
/** The site's calendar day of an instant (ms) as YYYY-MM-DD, which sorts as the days do. */
const siteDay = (ms) => zoned(new Date(ms).toISOString(), DAY, "en-CA");
/** A time of today (site time) as HH:MM:SS, an older one with its date. */
const when = (iso) => (!iso ? "—" : zoned(iso, DAY) === zoned(new Date().toISOString(), DAY) ? time(iso) : dateTime(iso));
/** ISO times with a zone inside a server's message text, rewritten in the site's time. */
const ISO_IN_TEXT = /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})/g;
const localiseTimes = (text) => text.replace(ISO_IN_TEXT, (iso) => when(iso));
const num = (v, digits = 1) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : String(v));

// ---- severity per zone / device ---------------------------------------------------------------------
function worst(alarms) {
  let best = "none";
  for (const a of alarms) if ((RANK[a.severity] ?? 0) > RANK[best]) best = a.severity;
  return best;
}
const openAlarms = () => [...state.alarms.values()].filter((a) => OPEN.has(a.state));
const alarmsOfZone = (zone) => openAlarms().filter((a) => a.zone === zone || a.subject === zone);
const alarmsOfDevice = (id) => openAlarms().filter((a) => a.device === id || a.subject === id);
const colouring = (list) => list.filter((a) => COLOURING.has(a.state));
/** The severity that colours a zone, device or floor, and whether a drill alone gives it. Any real alarm
 * there colours it by the worst real one, so a drill's worse alarm never hides a real alarm's colour. */
function mapSeverity(list) {
  const real = list.filter((a) => !a.drill);
  if (real.length) return { sev: worst(real), drill: false };
  const sev = worst(list);
  return { sev, drill: sev !== "none" };
}
/** The drill mark before an alarm's title and badge (the API's `drill`: its words carry the drill mark). */
const drillTag = (a) => (a.drill ? el("span", { class: "drill-tag", text: t("drill") }) : null);

// ---- device readings as short text ------------------------------------------------------------------
function readingText(device) {
  const live = state.live.get(device.id);
  const m = (live && live.metrics) || {};
  const parts = [];
  switch (device.kind) {
    case "strip_meter": case "smart_plug":
      if (m.current_a !== undefined) parts.push(num(m.current_a) + " A");
      if (m.power_w !== undefined) parts.push(num(m.power_w, 0) + " W");
      break;
    case "temp_sensor": case "mr_probe":
      if (m.temperature_c !== undefined) parts.push(num(m.temperature_c) + " °C");
      if (m.humidity_pct !== undefined) parts.push(num(m.humidity_pct, 0) + " %");
      if (m.water_leak !== undefined) parts.push(m.water_leak ? t("leak") : t("leak_ok"));
      if (m.smoke !== undefined && m.smoke) parts.push(t("smoke"));
      break;
    case "smoke_detector":
      if (m.smoke !== undefined) parts.push(m.smoke ? t("smoke") : t("smoke_ok"));
      if (m.detector_fault) parts.push(t("fault"));
      break;
    case "door_controller":
      if (m.door_open !== undefined) parts.push(m.door_open ? t("door_open") : t("door_closed"));
      if (m.door_locked !== undefined) parts.push(m.door_locked ? t("locked") : t("unlocked"));
      break;
    case "leak_sensor":
      if (m.water_leak !== undefined) parts.push(m.water_leak ? t("leak") : t("leak_ok"));
      break;
    default:
      for (const [k, v] of Object.entries(m).slice(0, 2)) parts.push(`${k} ${num(v)}`);
  }
  if (m.battery_low) parts.push(t("battery_low"));
  if (live && live.online === false) parts.push(t("offline_dev"));
  return parts.join(" · ");
}

// ---- floor map --------------------------------------------------------------------------------------
function bounds(zones, devices) {
  const xs = [], ys = [];
  for (const z of zones) for (const [x, y] of z.polygon) { xs.push(x); ys.push(y); }
  for (const d of devices) if (d.position) { xs.push(d.position[0]); ys.push(d.position[1]); }
  if (!xs.length) return { x: 0, y: 0, w: 10, h: 10 };
  const x = Math.min(...xs), y = Math.min(...ys);
  return { x, y, w: Math.max(...xs) - x || 1, h: Math.max(...ys) - y || 1 };
}
// The map has two views. The floor overview colours each zone by its worst state, labels it with its
// counts where the label fits, and draws only abnormal devices (in alarm or offline). A zone, once tapped,
// fills the map with all its devices. Either way markers sit on a grid of cells sized in screen pixels, so
// no two overlap at any zoom, and a label is drawn only where it touches no marker and no other label.
const MARKER_PX = 9, MARKER_GAP_PX = 4, LABEL_PAD_PX = 2;
// WCAG 2.5.8: a tap target of 24 × 24 CSS px. Markers sit at least this far apart, and each takes a tap on a
// disc of this diameter around it (an invisible circle under the mark), so a thumb gets the device it aimed at.
const TARGET_PX = 24;
const MARKER_PITCH_PX = Math.max(2 * MARKER_PX + MARKER_GAP_PX, TARGET_PX);
let measureCtx = null;
/** Width in px of `text` at `px` (canvas, same font as the page): to decide whether a label fits. */
function textWidth(text, px, weight = 700) {
  if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
  measureCtx.font = `${weight} ${px}px ${getComputedStyle(document.body).fontFamily}`;
  return measureCtx.measureText(text).width;
}
const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
function inside(polygon, x, y) {
  let hit = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i], [xj, yj] = polygon[j];
    if ((yi > y) !== (yj > y) && x < xi + ((y - yi) * (xj - xi)) / (yj - yi)) hit = !hit;
  }
  return hit;
}

/** Abnormal: has an alarm that colours the map, or the edge says it is offline. */
function deviceState(d) {
  const live = state.live.get(d.id);
  const alarms = colouring(alarmsOfDevice(d.id));
  return { ...mapSeverity(alarms), offline: !!(live && live.online === false) };
}
const priority = (s) => RANK[s.sev] * 2 + (s.offline ? 1 : 0);

function zoneSummary(z) {
  const alarms = colouring(alarmsOfZone(z.id));
  const devices = [...state.devices.values()].filter((d) => d.zone === z.id);
  const offline = devices.filter((d) => deviceState(d).offline).length;
  return { ...mapSeverity(alarms), alarms: alarms.length, offline, devices: devices.length };
}
function countsText(s) {
  return lang === "zh" ? `离线 ${s.offline} · 设备 ${s.devices}` : `${s.offline} offline · ${s.devices} devices`;
}
/** A zone's, device's or floor's severity in words, marked DRILL / 演练 when the drill alone gives it. */
const markedSevText = (s) => (s.drill ? `${t("drill")} ` : "") + sevText(s.sev);
function alarmsText(s) {
  const n = s.alarms ? (lang === "zh" ? ` · ${s.alarms} 条告警` : ` · ${s.alarms} alarm${s.alarms > 1 ? "s" : ""}`) : "";
  return markedSevText(s) + n;
}

/** The zone's label as big as fits its outline's box: three lines, then one, else none (the tap still tells). */
function zoneLabel(z, s, zb, u) {
  const name = z.name || z.id;
  const short = `${markedSevText(s)}${s.alarms ? " ×" + s.alarms : ""}`;
  const tiers = [[13, [name, alarmsText(s), countsText(s)]], [11, [name, alarmsText(s), countsText(s)]],
    [11, [name, short]], [10, [name, short]], [11, [short]], [10, [short]]];
  const room = { w: zb.w / u - 2 * LABEL_PAD_PX - 4, h: zb.h / u - 2 * LABEL_PAD_PX - 4 };
  for (const [px, lines] of tiers) {
    const w = Math.max(...lines.map((l) => textWidth(l, px))) + 4, h = lines.length * px * 1.3;
    if (w > room.w || h > room.h * 0.6) continue;
    const font = px * u, x = zb.x + zb.w / 2, y = zb.y + LABEL_PAD_PX * u;
    const text = svg("text", { class: "zone-label", "data-zone": z.id, x, y: y + font, "text-anchor": "middle",
      "font-size": font, "stroke-width": font * 0.18 });
    const classes = lines.length === 1 ? ["sev-text"] : ["zl-name", "sev-text", "zl-counts"];
    lines.forEach((line, i) => text.append(svg("tspan", { x, dy: i ? font * 1.3 : 0, class: classes[i], text: line })));
    return { node: text, rect: { x: x - (w / 2) * u, y, w: w * u, h: h * u + 2 * u } };
  }
  return null;
}

/** Grid cells of `step` inside the polygon, whose marker stays inside it and clear of `blocked` boxes. */
function cells(polygon, zb, step, r, blocked) {
  const out = [];
  const cols = Math.floor(zb.w / step), rows = Math.floor(zb.h / step);
  const x0 = zb.x + (zb.w - cols * step) / 2, y0 = zb.y + (zb.h - rows * step) / 2;
  for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) {
    const x = x0 + (i + 0.5) * step, y = y0 + (j + 0.5) * step;
    const box = { x: x - r, y: y - r, w: 2 * r, h: 2 * r };
    if (![[x - r, y - r], [x + r, y - r], [x - r, y + r], [x + r, y + r]].every(([px, py]) => inside(polygon, px, py))) continue;
    if (blocked.some((b) => overlaps(b, box))) continue;
    out.push({ x, y, r, free: true });
  }
  return out;
}
/** Each device on the free cell nearest its own position, most urgent first; those beyond the cells are
 * counted. `room(d, x, y)` may give a box kept clear of later markers (an abnormal device's reading), as
 * long as the cells left still hold every device after it. */
function snap(devices, free, room) {
  const placed = [];
  let hidden = 0;
  let left = free.length;
  devices.forEach((d, i) => {
    const [px, py] = d.position;
    let best = null, dist = Infinity;
    for (const c of free) {
      if (!c.free) continue;
      const e = (c.x - px) ** 2 + (c.y - py) ** 2;
      if (e < dist) { dist = e; best = c; }
    }
    if (!best) { hidden++; return; }
    best.free = false;
    left--;
    placed.push([d, best.x, best.y]);
    const box = room(d, best.x, best.y);
    if (!box) return;
    const under = free.filter((c) => c.free && c.x + c.r > box.x && c.x - c.r < box.x + box.w && c.y + c.r > box.y && c.y - c.r < box.y + box.h);
    if (left - under.length < devices.length - i - 1) return;
    for (const c of under) c.free = false;
    left -= under.length;
  });
  return { placed, hidden };
}

function markerNode(d, x, y, r, st, reach) {
  const live = state.live.get(d.id);
  const reading = readingText(d);
  const selected = state.selected && state.selected.type === "device" && state.selected.id === d.id;
  const label = `${kindText(d.kind)} ${d.name || d.id}: ${reading || t("unknown")} · ${markedSevText(st)}`;
  const shape = d.kind === "door_controller"
    ? svg("rect", { class: "mark", x: x - r, y: y - r, width: 2 * r, height: 2 * r, rx: r * 0.2, "stroke-width": r * 0.15 })
    : svg("circle", { class: "mark", cx: x, cy: y, r, "stroke-width": r * 0.15 });
  return svg("g", { class: "device" + (selected ? " selected" : ""), "data-device": d.id, "data-kind": d.kind,
    "data-severity": st.sev, "data-drill": String(st.drill), "data-online": live && live.online !== null && live.online !== undefined ? String(live.online) : "unknown",
    tabindex: "0", role: "button", "aria-label": label,
    onclick: (e) => { e.stopPropagation(); select("device", d.id); },
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select("device", d.id); } } },
  svg("title", { text: label }), svg("circle", { class: "hit", cx: x, cy: y, r: Math.max(reach, r) }), shape,
  svg("text", { class: "glyph", x, y: y + r * 0.38, "text-anchor": "middle", "font-size": r * 1.1, text: GLYPH[d.kind] || "?" }));
}

/** The first part of a device's reading ("13 A", "24.5 °C", "offline"): the whole is in its title and detail. */
const shortReading = (d) => readingText(d).split(" · ")[0];

/** The reading beside a marker (right, left, then below), inside its zone's box (a reading in the next zone
 * would read as that zone's), only where it touches nothing placed so far. */
function valueLabel(group, x, y, r, u, box, taken) {
  const reading = shortReading(state.devices.get(group.dataset.device));
  if (!reading) return;
  const px = 11, w = (textWidth(reading, px, 600) + 3) * u, h = px * 1.3 * u, gap = 2 * u;
  const spots = [[x + r + gap, y - h / 2, "start"], [x - r - gap - w, y - h / 2, "end"], [x - w / 2, y + r + gap, "middle"]];
  for (const [bx, by, anchor] of spots) {
    const rect = { x: bx, y: by, w, h };
    if (rect.x < box.x || rect.y < box.y || rect.x + w > box.x + box.w || rect.y + h > box.y + box.h) continue;
    if (taken.some((b) => overlaps(b, rect))) continue;
    taken.push(rect);
    const tx = anchor === "start" ? bx : anchor === "end" ? bx + w : bx + w / 2;
    group.append(svg("text", { class: "value", x: tx, y: by + h * 0.78, "text-anchor": anchor, "font-size": px * u,
      "stroke-width": px * u * 0.15, text: reading }));
    return;
  }
}

function zoneNode(z, s, extraClass) {
  const name = z.name || z.id;
  const label = `${name}: ${alarmsText(s)} · ${countsText(s)}`;
  const selected = state.selected && state.selected.type === "zone" && state.selected.id === z.id;
  return svg("polygon", { class: "zone" + (selected ? " selected" : "") + extraClass, "data-zone": z.id,
    "data-severity": s.sev, "data-drill": String(s.drill), "data-alarms": s.alarms, "data-offline": s.offline, "data-devices": s.devices,
    points: z.polygon.map((p) => p.join(",")).join(" "), tabindex: "0", role: "button",
    "aria-label": label, onclick: () => openZone(z.id),
    onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openZone(z.id); } } },
  svg("title", { text: label }));
}

function openZone(id) {
  state.view = id;
  select("zone", id, false);
  // on a phone the opened zone is what the tap was for: keep the map in sight, its detail follows below
  if (window.matchMedia("(max-width: 899px)").matches) $("map-zoom").scrollIntoView({ block: "start" });
}

function renderMap() {
  const map = $("map");
  const zones = [...state.zones.values()].filter((z) => z.floor === state.floor && z.polygon.length >= 3);
  if (state.view && !zones.some((z) => z.id === state.view)) state.view = null;
  const open = state.view ? state.zones.get(state.view) : null;
  const all = bounds(zones, []);
  const b = open ? bounds([open], []) : all;
  const pad = Math.max(b.w, b.h) * (open ? 0.02 : 0.01);
  const view = { x: b.x - pad, y: b.y - pad, w: b.w + 2 * pad, h: b.h + 2 * pad };
  map.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  map.dataset.view = open ? "zone" : "floor";
  const rect = map.getBoundingClientRect();
  const scale = rect.width > 0 && rect.height > 0 ? Math.min(rect.width / view.w, rect.height / view.h) : 600 / view.w;
  const u = 1 / scale;  // floor-plan units per screen pixel
  map.style.setProperty("--zone-stroke", String(u * 1.2));
  map.style.setProperty("--zone-stroke-selected", String(u * 3));
  const zoneLayer = [], markLayer = [], labelLayer = [];
  const hard = [];  // boxes of markers and zone labels, which nothing may touch
  const groups = [];  // [group, x, y, r, priority] of drawn markers, for their labels
  let hiddenTotal = 0;
  for (const z of zones) {
    const s = zoneSummary(z);
    const isOpen = open && z.id === open.id;
    zoneLayer.push(zoneNode(z, s, open ? (isOpen ? " open" : " faded") : ""));
    if (open && !isOpen) continue;
    const zb = bounds([z], []);
    const blocked = [];
    if (!open) {
      const zl = zoneLabel(z, s, zb, u);
      if (zl) { labelLayer.push(zl.node); blocked.push(zl.rect); hard.push(zl.rect); }
    }
    const wanted = [...state.devices.values()].filter((d) => d.zone === z.id && d.position)
      .map((d) => ({ d, st: deviceState(d) }))
      .filter(({ st }) => open || st.sev !== "none" || st.offline)
      .sort((a, c) => priority(c.st) - priority(a.st));
    if (!wanted.length) continue;
    // A crowded zone keeps its markers a tap target apart (shrinking them would make them too small to
    // tap): whatever finds no cell is counted, not piled up. An opened zone spreads its devices over the
    // widest grid that holds them all, leaving room for labels.
    const px = MARKER_PX;
    let free = [];
    if (open) {
      const area = (zb.w / u) * (zb.h / u);
      for (let step = Math.sqrt(area / wanted.length); step > MARKER_PITCH_PX; step *= 0.93) {
        free = cells(z.polygon, zb, step * u, px * u, blocked);
        if (free.length >= wanted.length) break;
      }
    }
    if (free.length < wanted.length) free = cells(z.polygon, zb, MARKER_PITCH_PX * u, px * u, blocked);
    const abnormal = new Set(wanted.filter(({ st }) => st.sev !== "none" || st.offline).map((w) => w.d.id));
    const room = (d, x, y) => {
      const reading = abnormal.has(d.id) ? shortReading(d) : "";
      return reading ? { x: x + r, y: y - r, w: (textWidth(reading, 11, 600) + 8) * u, h: 2 * r } : null;
    };
    const r = px * u;
    const { placed, hidden } = snap(wanted.map((w) => w.d), free, room);
    hiddenTotal += hidden;
    if (hidden) zoneLayer[zoneLayer.length - 1].dataset.hidden = String(hidden);
    for (const [d, x, y] of placed) {
      const st = deviceState(d);
      const g = markerNode(d, x, y, r, st, (TARGET_PX / 2) * u);
      markLayer.push(g);
      hard.push({ x: x - r, y: y - r, w: 2 * r, h: 2 * r });
      groups.push([g, x, y, r, priority(st), zb]);
    }
  }
  const taken = [...hard];
  for (const [g, x, y, r, , zb] of groups.sort((a, c) => c[4] - a[4])) valueLabel(g, x, y, r, u, zb, taken);
  map.replaceChildren(hatch(u), ...zoneLayer, ...markLayer, ...labelLayer);
  dropOverlaps(map);
  map.dataset.hidden = String(hiddenTotal);
  renderMapCaption(open, hiddenTotal);
}

/** The drill's hatching (style.css fills a drill-only zone with it): stripes a few screen pixels apart. */
function hatch(u) {
  const w = 8 * u;
  return svg("defs", {}, svg("pattern", { id: "drill-hatch", patternUnits: "userSpaceOnUse", width: w, height: w,
    patternTransform: "rotate(45)" }, svg("rect", { class: "hatch-bg", width: w, height: w }),
  svg("rect", { class: "hatch-line", width: w / 2, height: w })));
}

/** Labels as drawn can differ from their measured estimate by a pixel or a font fallback: any label that
 * still touches a marker or an earlier label is removed (zone labels first, then readings by urgency). */
function dropOverlaps(map) {
  const kept = [...map.querySelectorAll(".device .mark")].map((m) => m.getBBox());
  const labels = [...map.querySelectorAll("text.zone-label"), ...map.querySelectorAll("text.value")];
  for (const label of labels) {
    const box = label.getBBox();
    if (kept.some((k) => overlaps(k, box))) { label.remove(); continue; }
    kept.push(box);
  }
}

function renderMapCaption(open, hidden) {
  const box = $("map-zoom");
  if (!open) { box.hidden = true; return; }
  box.hidden = false;
  const s = zoneSummary(open);
  $("map-caption").replaceChildren(el("strong", { text: open.name || open.id }), " ",
    el("span", { class: "sev " + s.sev, "data-drill": String(s.drill), text: markedSevText(s) }),
    ` ${alarmsText(s).slice(markedSevText(s).length).replace(/^ · /, "")} · ${countsText(s)}`,
    hidden ? el("span", { class: "meta", "data-hidden": hidden, text: ` · ${t("more_in_list").replace("{n}", hidden)}` }) : "");
}

function renderFloors() {
  const box = $("floors");
  if (state.floors.length <= 1) { box.replaceChildren(); return; }
  box.replaceChildren(...state.floors.map((f) => {
    // a floor's own alarms (its evacuation notice: subject the floor, no zone) count as well as its zones'
    const alarms = colouring(openAlarms().filter((a) => state.zones.get(a.zone)?.floor === f.id || a.subject === f.id));
    const { sev, drill } = mapSeverity(alarms);
    return el("button", { type: "button", class: "btn", role: "tab", "aria-selected": String(f.id === state.floor),
      onclick: () => { state.floor = f.id; state.view = null; render(); } }, `${f.name || f.id} `,
    el("span", { class: "sev " + sev, "data-drill": String(drill), text: markedSevText({ sev, drill }) }));
  }));
}

function renderLegend() {
  $("legend").replaceChildren(...["critical", "major", "minor", "warning", "none"].map((s) =>
    el("li", { style: `--c: var(--${s})`, text: s === "none" ? t("legend_none") : sevText(s) })),
  el("li", { class: "drill-legend", "data-legend": "drill", hidden: !openAlarms().some((a) => a.drill),
    text: t("drill_legend") }));
}

// ---- alarm list and actions -------------------------------------------------------------------------
/** The alarm's heading in the page's language (server/domain/rule_titles.py); the id when the table lacks it. */
function ruleTitle(rule) {
  const title = state.rules[rule];
  return title ? (lang === "zh" ? title.zh : title.en) : rule;
}
const lifeSafety = (a) => !!(state.rules[a.rule] && state.rules[a.rule].life_safety);
const familyOf = (rule) => rule.split(".", 1)[0];
/** The alarm's own text in the page's language. A Chinese page shows no English text: the title says it. */
function alarmMessage(a) {
  const text = lang === "zh" ? a.message_zh : (a.message || a.message_zh);
  return text && text !== ruleTitle(a.rule) ? localiseTimes(text) : "";
}
function alarmWhere(a) {
  const device = a.device ? state.devices.get(a.device) : null;
  const what = device ? device.name || device.id : a.device || (a.subject !== a.zone ? subjectName(a.subject) : null);
  return [a.zone ? zoneName(a.zone) : null, what].filter(Boolean).join(" · ");
}

const given = (v) => v !== null && v !== undefined;
/** A measured value with its unit, at most two decimals ("12.56 A", "3.6 A", "55 % RH"). */
const withUnit = (v, unit) => `${typeof v === "number" ? String(Number(v.toFixed(2))) : String(v)}${unit ? ` ${unit}` : ""}`;
/** The alarm's values (server/api/schemas.py AlarmOut): what it was raised at, the worst while it held when that
 * differs, and the latest, labelled "cleared at" once cleared: the latest alone would make a cleared 12.56 A
 * overload read as 3.67. An older server without raised_value gets its one value. */
function alarmValues(a) {
  const unit = a.unit || "";
  const shown = (key, v) => el("span", { class: "value", "data-value": key, text: t("value_" + key).replace("{v}", withUnit(v, unit)) });
  if (!given(a.raised_value)) return given(a.value) ? [el("span", { class: "value", "data-value": "value", text: `${t("value_label")} ${withUnit(a.value, unit)}` })] : [];
  const out = [shown("raised", a.raised_value)];
  const same = (x, y) => withUnit(x, unit) === withUnit(y, unit);
  if (given(a.peak_value) && !same(a.peak_value, a.raised_value)) out.push(shown("peak", a.peak_value));
  if (a.cleared_at && given(a.value)) out.push(shown("cleared", a.value));
  else if (given(a.value) && !same(a.value, a.raised_value) && !(given(a.peak_value) && same(a.value, a.peak_value))) out.push(shown("now", a.value));
  return out;
}

/** When the alarm last became worse or came back (the API's `last_raised_at`; an older server's first raise):
 * the time a push about that change gives, so the page must not show only the first raise. */
const latestRaise = (a) => a.last_raised_at || a.raised_at;
function raisedText(a) {
  const latest = latestRaise(a);
  return Date.parse(latest) === Date.parse(a.raised_at) ? when(a.raised_at)
    : t("raised_again").replace("{t}", when(latest)).replace("{first}", when(a.raised_at));
}
function alarmItem(a) {
  const message = alarmMessage(a);
  const values = alarmValues(a);
  const sep = () => " · ";
  const meta = [alarmWhere(a), el("span", { class: "raised", "data-at": latestRaise(a), text: raisedText(a) }),
    a.acknowledged_by ? `${t("acknowledged_by")} ${a.acknowledged_by}` : null, a.rule].filter(Boolean)
    .flatMap((part, i) => (i ? [sep(), part] : [part]));
  const li = el("li", { class: "alarm " + a.severity, "data-id": a.id, "data-rule": a.rule, "data-state": a.state,
    "data-severity": a.severity, "data-drill": String(!!a.drill),
    "data-life-safety": String(lifeSafety(a)) },
    el("div", { class: "line1" }, drillTag(a), el("span", { class: "sev " + a.severity, text: sevText(a.severity) }),
      lifeSafety(a) ? el("span", { class: "life", text: t("life_safety") }) : null,
      el("span", { class: "rule", text: ruleTitle(a.rule) }), el("span", { class: "state", text: stateText(a.state) })),
    message ? el("div", { class: "msg", text: message }) : null,
    values.length ? el("div", { class: "values" }, ...values) : null,
    el("div", { class: "meta" }, ...meta));
  if (state.selected && state.selected.type === "alarm" && state.selected.id === a.id) li.classList.add("targeted");
  if (a.cut) li.append(el("div", { class: "cut", "data-cut-state": a.cut.state, text: cutText(a.cut) }));
  for (const c of a.auto_cut || []) {
    li.append(el("div", { class: "cut auto-cut", "data-cut-state": c.state, "data-device": c.device, text: cutText(c) }));
  }
  {
    const actions = el("div", { class: "actions" });
    if (a.cut && a.cut.state === "pending" && may("hold_cut")) {
      actions.append(el("button", { type: "button", class: "btn primary hold-cut", text: t("hold_cut"),
        onclick: () => openAction("hold", a) }));
    }
    if ((a.state === "active" || a.state === "cleared_unacked" || a.state === "shelved") && mayAcknowledge(a)) {
      actions.append(el("button", { type: "button", class: "btn primary ack", text: t("ack"), onclick: () => openAction("ack", a) }));
    }
    if ((a.state === "active" || a.state === "acknowledged") && a.severity !== "critical" && !a.latching
      && may("shelve")) {
      actions.append(el("button", { type: "button", class: "btn shelve", text: t("shelve"), onclick: () => openAction("shelve", a) }));
    }
    if (OPEN.has(a.state) && may("close_latched")) {
      actions.append(el("button", { type: "button", class: "btn close", text: t("close"), onclick: () => openAction("close", a) }));
    }
    if (actions.childElementCount) li.append(actions);
  }
  return li;
}

/** A cut's line on an alarm card, in the page's language: the delayed cut (elec.high_power_appliance), or one
 * plug of the automatic cut of a critical overload. */
/** The fixed reasons a cut fails with (edge/agent.py's answers, server/api/schemas.py's expiry) in 中文; any
 * other reason (a person's hold, a driver's error) is shown as given. */
const CUT_REASONS_ZH = {
  "no answer from the edge before the command expired: check the plug by hand": "网关在指令过期前未应答,请到现场检查插座",
  "no confirmation from device": "插座未确认断开",
  "edge stopped before the device confirmed": "插座确认前网关已停止",
  "expired": "指令到达网关时已过期",
  "bad_signature": "指令签名无效,网关拒绝执行",
  "the edge reported the command failed": "网关报告指令执行失败",
};
const cutReason = (why) => (lang === "zh" && CUT_REASONS_ZH[why]) || why;
function cutText(cut) {
  const at = cut.state === "done" || cut.state === "failed" ? (cut.at || cut.due_at) : cut.due_at;
  const words = { at: time(at), by: personText(cut.held_by || "—"), why: cutReason(cut.why || "—"), device: subjectName(cut.device) };
  return t((cut.automatic ? "auto_cut_" : "cut_") + cut.state).replace(/\{(\w+)\}/g, (_, k) => words[k]);
}
/** The server's authorization table decides (GET /api/me `permissions`): others get no button. While the
 * permissions are unknown every button is drawn, so a failed /api/me never hides a lead's acknowledge on a fire;
 * the server still checks every action and the page shows its refusal. */
const may = (permission) => state.permissions === null || state.permissions.includes(permission);
/** server/domain/policy.py can_acknowledge: any alarm, or a non-critical one of the account's own zones. */
const mayAcknowledge = (a) => may("acknowledge_any") || (may("acknowledge_own_zones") && a.severity !== "critical"
  && state.accountZones.length > 0 && (!a.zone || state.accountZones.includes(a.zone)));

// The list people work through: life safety first, then severity, then the newest; shelved and suppressed
// alarms last. The same rule in the same zone is one row with a count, opened on a tap.
const muted = (a) => (a.state === "shelved" || a.state === "suppressed" ? 1 : 0);
const byUrgency = (a, b) => muted(a) - muted(b) || Number(lifeSafety(b)) - Number(lifeSafety(a))
  || RANK[b.severity] - RANK[a.severity] || Date.parse(latestRaise(b)) - Date.parse(latestRaise(a)) || b.id - a.id;
function sortAlarms(list) { return list.sort(byUrgency); }

function matchesFilters(a) {
  const f = state.filters;
  return (!f.severity || a.severity === f.severity) && (!f.zone || (a.zone || a.subject) === f.zone)
    && (!f.family || familyOf(a.rule) === f.family);
}
function groupAlarms(list) {
  const groups = new Map();
  for (const a of sortAlarms(list)) {
    const key = `${a.rule}|${a.zone || a.subject}|${a.drill ? "drill" : "real"}`;  // a drill's never hides a real one
    if (!groups.has(key)) groups.set(key, { key, alarms: [] });
    groups.get(key).alarms.push(a);  // sorted: the group's first alarm is its most urgent
  }
  return [...groups.values()];
}

function groupItem(g) {
  const [head] = g.alarms;
  const open = state.expanded.has(g.key);
  const latest = g.alarms.reduce((m, a) => (Date.parse(latestRaise(a)) > Date.parse(m) ? latestRaise(a) : m), latestRaise(head));
  const where = head.zone ? zoneName(head.zone) : subjectName(head.subject);
  const li = el("li", { class: "alarm-group alarm " + head.severity, "data-group": g.key, "data-rule": head.rule,
    "data-severity": head.severity, "data-drill": String(!!head.drill),
    "data-zone": head.zone || head.subject, "data-count": g.alarms.length, "data-life-safety": String(lifeSafety(head)) });
  const toggle = el("button", { type: "button", class: "group-toggle", "aria-expanded": String(open),
    onclick: () => { if (state.expanded.has(g.key)) state.expanded.delete(g.key); else state.expanded.add(g.key); renderAlarms(); } },
  el("span", { class: "line1" }, drillTag(head), el("span", { class: "sev " + head.severity, text: sevText(head.severity) }),
    lifeSafety(head) ? el("span", { class: "life", text: t("life_safety") }) : null,
    el("span", { class: "rule", text: ruleTitle(head.rule) }), el("span", { class: "count group-count", text: "×" + g.alarms.length }),
    el("span", { class: "chevron", "aria-hidden": "true", text: open ? "▾" : "▸" })),
  el("span", { class: "meta", text: `${where} · ${t("latest")} ${when(latest)} · ${head.rule}` }));
  // a pending cut is only worth a hold before its due time: the folded row says when the first one comes
  const pending = g.alarms.filter((a) => a.cut && a.cut.state === "pending")
    .sort((a, b) => Date.parse(a.cut.due_at) - Date.parse(b.cut.due_at));
  if (pending.length) toggle.append(el("span", { class: "cut", "data-cut-state": "pending", text: cutText(pending[0].cut) }));
  const autoCut = autoCutSummary(g.alarms);
  if (autoCut) toggle.append(autoCut);
  li.append(toggle);
  if (open) li.append(el("ul", { class: "alarms group-items" }, ...g.alarms.map((a) => alarmItem(a))));
  return li;
}

/** The automatic cuts of a folded group's alarms in one line ("power cut: 3 done, 1 FAILED"), failures first:
 * a failed cut is the one a supervisor must act on, and must not wait for someone to unfold the row. */
function autoCutSummary(alarms) {
  const cuts = alarms.flatMap((a) => a.auto_cut || []);
  if (!cuts.length) return null;
  const n = (s) => cuts.filter((c) => c.state === s).length;
  const counts = { failed: n("failed"), cutting: n("cutting"), done: n("done") };
  const parts = Object.entries(counts).filter(([, k]) => k > 0)
    .map(([s, k]) => t("auto_cut_n_" + s).replace("{n}", k));
  const worst = counts.failed ? "failed" : counts.cutting ? "cutting" : "done";
  return el("span", { class: "cut auto-cut-summary", "data-cut-state": worst, "data-done": counts.done,
    "data-failed": counts.failed, "data-cutting": counts.cutting,
    text: t("auto_cut_summary") + parts.join(lang === "zh" ? "," : ", ") });
}

function renderFilters(list) {
  const f = state.filters;
  const option = (value, text, current) => el("option", { value, text, selected: value === current });
  const zones = [...new Set(list.map((a) => a.zone || a.subject))].concat(f.zone ? [f.zone] : [])
    .filter((z, i, all) => all.indexOf(z) === i)
    .sort((x, y) => String(zoneName(x)).localeCompare(String(zoneName(y))));
  const families = state.families.filter((fam) => list.some((a) => familyOf(a.rule) === fam.id) || fam.id === f.family);
  $("filter-severity").replaceChildren(option("", t("all_severities"), f.severity),
    ...["critical", "major", "minor", "warning"].map((s) => option(s, sevText(s), f.severity)));
  $("filter-zone").replaceChildren(option("", t("all_zones"), f.zone),
    ...zones.map((z) => option(z, zoneName(z), f.zone)));
  $("filter-family").replaceChildren(option("", t("all_families"), f.family),
    ...families.map((fam) => option(fam.id, lang === "zh" ? fam.zh : fam.en, f.family)));
}

function renderAlarms() {
  const all = openAlarms();
  const list = all.filter(matchesFilters);
  const groups = groupAlarms(list);
  // "no alarms · all clear" only from a list the server gave this page: never on the sign-in screen
  $("empty").hidden = all.length > 0 || !readable();
  $("alarm-count").textContent = state.alarmsRead ? `${all.length}${state.alarmsCut ? "+" : ""}` : "";
  $("alarms-cut").hidden = !state.alarmsCut;
  $("alarms-cut").textContent = t("alarms_cut").replace(/\{n\}/g, ALARMS_LIMIT);
  // a drill's alarms are counted apart, so the header never reads as a real fire's
  const drills = all.filter((a) => a.drill).length;
  $("alarm-drill-count").hidden = drills === 0;
  $("alarm-drill-count").dataset.n = String(drills);
  $("alarm-drill-count").textContent = `${t("drill")} ${drills}`;
  const chips = [];
  for (const s of ["critical", "major", "minor", "warning"]) {
    for (const drill of [false, true]) {
      const n = all.filter((a) => a.severity === s && !!a.drill === drill).length;
      if (n) chips.push(el("span", { class: "sev " + s, "data-sev": s, "data-drill": String(drill), "data-n": n,
        text: `${drill ? t("drill") + " " : ""}${sevText(s)} ${n}` }));
    }
  }
  $("alarm-sev-counts").replaceChildren(...chips);
  $("legend").querySelector('[data-legend="drill"]')?.toggleAttribute("hidden", drills === 0);
  const filtered = list.length !== all.length;
  $("alarm-shown").hidden = !filtered;
  $("alarm-shown").textContent = t("shown").replace("{n}", list.length).replace("{of}", all.length);
  renderFilters(all);
  $("alarms").replaceChildren(...groups.map((g) => (g.alarms.length > 1 ? groupItem(g) : alarmItem(g.alarms[0]))));
}

let pending = null;
function openAction(kind, alarm) {
  pending = { kind, alarm };
  showActionDialog(kind, `#${alarm.id} ${alarm.drill ? t("drill") + " " : ""}${ruleTitle(alarm.rule)} · ${sevText(alarm.severity)} · ${alarmWhere(alarm)}`);
}
/** Marking a person safe is the roll call's answer for them: asked first, as a wrong tap would count
 * someone still inside as safe. The note is optional, as the route's. */
function openMarkSafe(evacuation, person, who) {
  pending = { kind: "safe", evacuation, person: person.person };
  const evac = state.evac && state.evac.id === evacuation ? state.evac : null;
  showActionDialog("safe", [who, evac ? `${evac.drill ? t("drill") + " " : ""}${floorName(evac.floor)}` : ""]
    .filter(Boolean).join(" · "));
}
function showActionDialog(kind, what) {
  $("action-title").textContent = t(kind + "_title");
  $("action-alarm").textContent = what;
  $("until-row").hidden = kind !== "shelve";
  const until = new Date(Date.now() + 60 * 60 * 1000);
  until.setSeconds(0, 0);
  $("action-until").value = new Date(until.getTime() - until.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  $("action-reason").value = "";
  $("reason-label").textContent = kind === "ack" || kind === "safe" ? t("note_optional") : t("reason");
  $("action-dialog-error").hidden = true;
  $("action-dialog").showModal();
  $("action-reason").focus();
}

async function submitAction(event) {
  event.preventDefault();
  if (!pending) return;
  const { kind, alarm } = pending;
  const reason = $("action-reason").value.trim();
  let body;
  if (kind === "ack" || kind === "safe") body = { note: reason };
  else if (!reason) { return dialogError(t("reason_required")); }
  else if (kind === "close" || kind === "hold") body = { reason };
  else {
    if (!$("action-until").value) return dialogError(t("until_required"));
    body = { until: new Date($("action-until").value).toISOString(), reason };
  }
  $("action-submit").disabled = true;
  try {
    if (kind === "safe") {  // the route answers with the roll call as it is now
      state.roll = await api(`/api/evacuations/${encodeURIComponent(pending.evacuation)}/roll-call/${encodeURIComponent(pending.person)}`,
        { method: "POST", body: JSON.stringify(body) });
      renderEvacuation();
    } else if (kind === "hold") {  // the route is the plug's; the alarm is re-read to show the held cut
      await api(`/api/devices/${encodeURIComponent(alarm.cut.device)}/hold-cut`, { method: "POST", body: JSON.stringify(body) });
      upsert(await api(`/api/alarms/${alarm.id}`));
    } else {
      upsert(await api(`/api/alarms/${alarm.id}/${kind}`, { method: "POST", body: JSON.stringify(body) }));
    }
    $("action-dialog").close();
    pending = null;
    $("action-error").hidden = true;
  } catch (e) {
    const prefix = e.status === 403 ? t("denied") : t("failed");
    dialogError(`${prefix}: ${e.message}`);
  } finally {
    $("action-submit").disabled = false;
  }
}
function dialogError(message) {
  $("action-dialog-error").textContent = message;
  $("action-dialog-error").hidden = false;
}

// ---- detail panel -----------------------------------------------------------------------------------
function select(type, id, scroll = true) {
  state.selected = { type, id };
  state.chartMetric = null;
  render();
  loadChart();
  const panel = $("detail");
  if (scroll && window.matchMedia("(max-width: 899px)").matches) panel.scrollIntoView({ block: "start" });
}

function chartDevice() {
  const sel = state.selected;
  if (!sel || sel.type === "alarm" || sel.type === "evacuation") return null;
  if (sel.type === "device") return state.devices.get(sel.id) || null;
  const inZone = [...state.devices.values()].filter((d) => d.zone === sel.id);
  return inZone.find((d) => numericMetrics(d).length) || null;
}
function numericMetrics(device) {
  const m = (state.live.get(device.id) || {}).metrics || {};
  const names = Object.keys(m).filter((k) => typeof m[k] === "number");
  return CHART_METRICS.filter((k) => names.includes(k)).concat(names.filter((k) => !CHART_METRICS.includes(k)));
}

function renderDetail() {
  const sel = state.selected;
  const panel = $("detail");
  if (!sel) { panel.hidden = true; return; }
  panel.hidden = false;
  if (sel.type === "alarm" || sel.type === "evacuation") { renderLinked(sel); return; }
  const body = [];
  let alarms;
  if (sel.type === "zone") {
    const z = state.zones.get(sel.id);
    if (!z) { panel.hidden = true; return; }
    const s = zoneSummary(z);
    $("detail-title").replaceChildren(`${t("zone")}: ${z.name || z.id} `,
      el("span", { class: "sev " + s.sev, "data-drill": String(s.drill), text: markedSevText(s) }));
    if (z.polygon.length < 3) body.push(el("p", { class: "meta", text: t("no_map") }));
    const devices = [...state.devices.values()].filter((d) => d.zone === z.id);
    body.push(el("h3", { text: t("devices_here") }), el("ul", { class: "plain-list" }, ...devices.map((d) => {
      const ds = deviceState(d);
      return el("li", {}, el("button", { type: "button", class: "link", onclick: () => select("device", d.id) },
        el("span", { class: "sev " + ds.sev, "data-drill": String(ds.drill), text: markedSevText(ds) }), ` ${kindText(d.kind)} ${d.name || d.id}: ${readingText(d) || t("unknown")}`));
    })));
    alarms = alarmsOfZone(z.id);
  } else {
    const d = state.devices.get(sel.id);
    if (!d) { panel.hidden = true; return; }
    const live = state.live.get(d.id) || {};
    const st = deviceState(d);
    $("detail-title").replaceChildren(`${kindText(d.kind)}: ${d.name || d.id} `,
      el("span", { class: "sev " + st.sev, "data-drill": String(st.drill), text: markedSevText(st) }));
    const online = live.online === true ? t("online") : live.online === false ? t("offline_dev") : t("unknown");
    body.push(el("dl", { class: "kv" },
      el("dt", { text: t("device") }), el("dd", { text: d.id }),
      el("dt", { text: t("zone") }), el("dd", { text: zoneName(d.zone) }),
      el("dt", { text: t("value") }), el("dd", { "data-reading": d.id, text: readingText(d) || "—" }),
      el("dt", { text: t("last_seen") }), el("dd", { text: `${time(live.last_seen)} · ${online}` })));
    alarms = alarmsOfDevice(d.id);
  }
  body.push(el("h3", { text: t("alarms_here") }));
  body.push(alarms.length ? el("ul", { class: "alarms" }, ...sortAlarms(alarms).map((a) => alarmItem(a)))
    : el("p", { class: "ok-text", text: t("none_here") }));
  const device = chartDevice();
  if (device) {
    const metrics = numericMetrics(device);
    if (!state.chartMetric || !metrics.includes(state.chartMetric)) state.chartMetric = metrics[0] || null;
    body.push(el("h3", { text: `${t("chart_last_hour")} · ${device.name || device.id}` }));
    if (metrics.length > 1) {
      body.push(el("div", { class: "metric-tabs" }, ...metrics.map((m) => el("button", { type: "button", class: "btn",
        "aria-pressed": String(m === state.chartMetric), "data-metric": m, text: metricText(m), onclick: () => { state.chartMetric = m; renderDetail(); loadChart(); } }))));
    }
    body.push(chartSvg(state.chart && state.chart.device === device.id && state.chart.metric === state.chartMetric ? state.chart.points : null));
  }
  $("detail-body").replaceChildren(...body);
}

/** The detail of what a push's link names: the alarm (with its actions, and its device and zone a tap away),
 * or an evacuation that is no longer on the banner. */
function renderLinked(sel) {
  const body = [];
  if (sel.type === "alarm") {
    const a = state.alarms.get(sel.id) || (state.linked && state.linked.id === sel.id ? state.linked : null);
    if (!a) { $("detail").hidden = true; return; }
    $("detail-title").replaceChildren(...[drillTag(a), a.drill ? " " : null, `${ruleTitle(a.rule)} `,
      el("span", { class: "sev " + a.severity, text: sevText(a.severity) })].filter(Boolean));
    body.push(el("ul", { class: "alarms" }, alarmItem(a)));
    const links = [];
    if (a.device && state.devices.has(a.device)) {
      const d = state.devices.get(a.device);
      links.push(el("button", { type: "button", class: "btn", "data-go": "device",
        onclick: () => select("device", d.id) }, `${kindText(d.kind)}: ${d.name || d.id}`));
    }
    if (a.zone && state.zones.has(a.zone)) {
      links.push(el("button", { type: "button", class: "btn", "data-go": "zone",
        onclick: () => select("zone", a.zone) }, `${t("zone")}: ${zoneName(a.zone)}`));
    }
    if (links.length) body.push(el("div", { class: "actions" }, ...links));
  } else {
    const ev = state.linked && state.linked.id === sel.id ? state.linked : null;
    if (!ev) { $("detail").hidden = true; return; }
    const message = ev.message ? (lang === "zh" ? ev.message.zh || ev.message.en : ev.message.en || ev.message.zh) : ev.reason;
    $("detail-title").replaceChildren(...[drillTag(ev), ev.drill ? " " : null, `${t("evacuation")} ${ev.id}`].filter(Boolean));
    body.push(el("dl", { class: "kv", "data-evacuation": ev.id, "data-state": ev.state },
      el("dt", { text: t("floor") }), el("dd", { text: floorName(ev.floor) }),
      el("dt", { text: t("since") }), el("dd", { text: dateTime(ev.issued_at) }),
      el("dt", { text: t("evac_over") }), el("dd", { text: ev.all_clear_at ? dateTime(ev.all_clear_at) : "—" })),
    el("p", { class: "msg", text: message || "" }));
  }
  $("detail-body").replaceChildren(...body);
  $("detail").hidden = false;
}

/** Opens the push's target kept by readHash, once the page is loaded and signed in; kept on failure. */
async function openTarget() {
  const raw = sessionStorage.getItem(TARGET_KEY);
  if (!raw || !token || !state.loaded) return;
  let target;
  try { target = JSON.parse(raw); } catch { sessionStorage.removeItem(TARGET_KEY); return; }
  $("evac").classList.remove("targeted");
  try {
    if (target.type === "alarm") {
      const alarm = state.alarms.get(target.id) || await api(`/api/alarms/${target.id}`);
      state.linked = alarm;
      state.selected = { type: "alarm", id: alarm.id };
      render();
      $("detail").scrollIntoView({ block: "start" });
    } else if (state.evac && state.evac.id === target.id) {
      $("evac").classList.add("targeted");  // the banner is the live evacuation's card
      window.scrollTo(0, 0);
    } else {
      state.linked = await api(`/api/evacuations/${encodeURIComponent(target.id)}`);
      state.selected = { type: "evacuation", id: target.id };
      render();
      $("detail").scrollIntoView({ block: "start" });
    }
    sessionStorage.removeItem(TARGET_KEY);
  } catch (e) {
    if (e.status === 401) return;  // kept: opened after the sign-in
    sessionStorage.removeItem(TARGET_KEY);
    $("action-error").textContent = `${t("not_found").replace("{what}", `${target.type} ${target.id}`)}: ${e.message}`;
    $("action-error").hidden = false;
  }
}

function chartSvg(points) {
  const W = 300, H = 120, P = 4;
  const box = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${metricText(state.chartMetric || "")} · ${t("chart_last_hour")}` });
  if (!points) return box;
  const data = points.filter((p) => typeof p.value === "number");
  if (!data.length) { box.append(svg("text", { x: 8, y: H / 2, text: t("no_data") })); return box; }
  const ts = data.map((p) => Date.parse(p.ts)), vs = data.map((p) => p.value);
  // The window is the last hour, narrowed to the data when there is less: a short history still fills the chart.
  const t1 = Math.max(Date.now(), ...ts), t0 = Math.max(t1 - 3600 * 1000, Math.min(...ts) - 1000);
  let lo = Math.min(...vs), hi = Math.max(...vs);
  if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= Math.abs(lo) * 0.1 || 1; }
  const sx = (x) => P + ((x - t0) / (t1 - t0)) * (W - 2 * P), sy = (v) => H - P - 12 - ((v - lo) / (hi - lo)) * (H - 2 * P - 28);
  const pts = data.map((p, i) => [sx(ts[i]), sy(vs[i])]);
  box.append(svg("polyline", { "data-points": String(data.length), points: pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ") }));
  if (data.length < 40) for (const [x, y] of pts) box.append(svg("circle", { cx: x, cy: y, r: 1.6 }));
  box.append(svg("text", { x: P, y: 11, text: `${metricText(state.chartMetric)}: ${num(Math.min(...vs), 2)} – ${num(Math.max(...vs), 2)}` }),
    svg("text", { x: P, y: H - 3, text: time(new Date(t0).toISOString()) }),
    svg("text", { x: W - P, y: H - 3, "text-anchor": "end", text: time(new Date(t1).toISOString()) }));
  return box;
}

async function loadChart() {
  const device = chartDevice();
  if (!device) return;
  const metric = state.chartMetric || numericMetrics(device)[0];
  if (!metric) return;
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  try {
    const points = await api(`/api/readings?device=${encodeURIComponent(device.id)}&metric=${encodeURIComponent(metric)}&since=${encodeURIComponent(since)}`);
    state.chart = { device: device.id, metric, points };
    renderDetail();
  } catch { /* the chart is best effort */ }
}

// ---- inspections, health, evacuation ----------------------------------------------------------------
function renderInspections() {
  // Due today in the site's days, not the viewer's. A day's duty is due by the site's midnight (the daily
  // fire patrol's deadline is 00:00 of the next day): a deadline is counted on the day it ends.
  const today = siteDay(Date.now());
  const list = state.inspections.filter((task) => siteDay(Date.parse(task.due_at) - 1) <= today)
    .sort((a, b) => Number(b.overdue) - Number(a.overdue) || Date.parse(a.due_at) - Date.parse(b.due_at));
  $("inspections").replaceChildren(...(list.length || !(state.inspectionsRead && readable()) ? list.map((task) => el("li", { "data-task": task.id },
    el("div", { text: lang === "zh" ? task.what_zh || task.what : task.what || task.what_zh }),
    el("div", { class: "meta" }, task.overdue ? el("span", { class: "overdue", text: t("overdue") + " · " }) : "",
      `${t("due")} ${dateTime(task.due_at)} · ${historyWhere(task)}${task.assignee ? " · " + personText(task.assignee) : " · " + (ROLES[lang][task.role] || task.role)}`))) :
    [el("li", { class: "ok-text", text: t("no_inspections") })]));
}

// The history, its CSV and its printable report are fetched with the token (a plain link would carry none, and
// the token must not go into an address) and handed to the browser as a blob.
const HISTORY_DAYS = 30;
const HISTORY_WHEN = { ...DAY, hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
/** GET /api/inspections/history is open to every signed-in role (docs/api.md): the entry shows once signed in. */
const mayReadHistory = () => state.loaded && $("login").hidden;
function historyPath(format) {
  const since = new Date(Date.now() - HISTORY_DAYS * 86400000).toISOString();
  return "/api/inspections/history?" + new URLSearchParams({ since, format });
}
/** The history's item rows as one entry per task, newest first, with its count of failed items. */
function historyTasks(rows) {
  const tasks = new Map();
  for (const row of rows) {
    const task = tasks.get(row.task_id) || { ...row, failed: 0 };
    if (row.result === "fail") task.failed += 1;
    tasks.set(row.task_id, task);
  }
  const at = (task) => Date.parse(task.completed_at || task.due_at);
  return [...tasks.values()].sort((a, b) => at(b) - at(a));
}
function historyWhere(task) {
  const device = task.device ? (state.devices.get(task.device) || {}).name || task.device : "";
  const where = [task.zone ? zoneName(task.zone) : "", device, task.seat || ""].filter(Boolean);
  return where.length ? where.join(" · ") : task.subject === "site" ? t("whole_site") : task.subject;
}
function renderHistory() {
  $("history-open").hidden = !mayReadHistory();
  const open = state.history !== null && mayReadHistory();
  $("history").hidden = !open;
  $("history-open").setAttribute("aria-expanded", String(open));
  if (!open) return;
  const tasks = historyTasks(state.history);
  $("history-list").replaceChildren(...(tasks.length ? tasks.map((task) => {
    // an open task past its deadline (the API's `overdue`) is the one to chase: it must not read as "open"
    const overdue = task.status === "open" && task.overdue === true;
    const status = overdue ? t("history_overdue")
      : task.status === "done" && task.on_time === false ? t("history_late")
        : (TASK_STATUS[lang][task.status] ?? task.status);
    const who = personText(task.completed_by || task.assignee || "");
    // only a signed task has results: "no failed items" on an unsigned one would read as all passed
    const findings = task.status !== "done" ? []
      : [" · ", task.failed ? el("span", { class: "failed", text: t("history_findings").replace("{n}", task.failed) })
        : t("history_no_findings")];
    return el("li", { "data-task": task.task_id, "data-status": task.status, "data-overdue": String(overdue) },
      el("div", { text: lang === "zh" ? task.what_zh || task.what : task.what || task.what_zh }),
      el("div", { class: "meta" }, `${task.completed_at ? "" : t("due") + " "}${zoned(task.completed_at || task.due_at, HISTORY_WHEN)} · ${historyWhere(task)}`),
      el("div", { class: "meta" }, el("span", { class: overdue ? "task-status overdue" : "task-status", text: status }),
        who ? ` · ${who}` : "", ...findings));
  }) : [el("li", { class: "ok-text", text: t("history_empty") })]));
}
function historyError(error) {
  $("history-error").textContent = `${t("failed")}: ${error.message}`;
  $("history-error").hidden = false;
}
async function toggleHistory() {
  $("history-error").hidden = true;
  if (state.history !== null) { state.history = null; renderHistory(); return; }
  try {
    state.history = await api(historyPath("json"));
  } catch (error) {
    state.history = [];
    historyError(error);
  }
  renderHistory();
}
/** The file name of a response's Content-Disposition, or `fallback`. */
function attachmentName(response, fallback) {
  const m = /filename="?([^";]+)"?/.exec(response.headers.get("Content-Disposition") || "");
  return m ? m[1] : fallback;
}
async function downloadHistoryCsv() {
  $("history-error").hidden = true;
  try {
    const response = await request(historyPath("csv"));
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: attachmentName(response, "inspections.csv"), hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) { historyError(error); }
}
async function openHistoryReport() {
  $("history-error").hidden = true;
  const tab = window.open("", "_blank");  // opened within the tap: a phone's popup blocker lets it through
  try {
    const response = await request(historyPath("html"));
    const url = URL.createObjectURL(await response.blob());
    if (tab) tab.location.href = url;
    else el("a", { href: url, target: "_blank", rel: "noopener" }).click();  // the browser asks to allow the popup
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    if (tab) tab.close();
    historyError(error);
  }
}

function renderHealth() {
  const items = [];
  const deps = (state.health && state.health.dependencies) || {};
  for (const key of ["broker", "sql", "timeseries"]) {
    if (!(key in deps)) continue;
    const up = !!deps[key].up;
    items.push(el("li", { class: up ? "up" : "down", "data-health": key }, `${t(key)}: ${up ? t("up") : t("down")}`));
  }
  const edges = new Map();
  for (const d of state.devices.values()) {
    const live = state.live.get(d.id);
    edges.set(d.edge, (edges.get(d.edge) || false) || !!(live && live.online));
  }
  if (edges.size) {
    const online = [...edges.values()].filter(Boolean).length;
    items.push(el("li", { class: online === edges.size ? "up" : "down", "data-health": "edges",
      title: [...edges].map(([e, on]) => `${e}: ${on ? t("up") : t("down")}`).join(", ") },
    `${t("edges")}: ${online}/${edges.size}`));
  }
  if (state.health && state.health.ingest) items.push(el("li", { "data-health": "ingest" }, `${t("ingest")}: ${state.health.ingest.messages}`));
  $("health").replaceChildren(...items);
}

function renderEvacuation() {
  // Shape (server/api/routes/evacuations.py): evacuation {id, floor, zones, fire_zone, drill, state, reason,
  // issued_at, message {zh, en}}; roll call {inside: [entry], visitors_inside, unknown_on_roster: [entry],
  // people: [entry]}, where an entry is {person, name, status: inside | out | safe | unknown, zone, last_door,
  // is_visitor, host_name}. Unknown is someone rostered on the floor who never badged: they may still be in.
  const evac = state.evac;
  const banner = $("evac");
  if (!evac) { banner.hidden = true; return; }
  banner.hidden = false;
  banner.dataset.evacuation = evac.id;
  banner.dataset.drill = String(!!evac.drill);
  // a drill must never read as a real evacuation: its own headline (also after a language switch)
  $("evac-title").dataset.i18n = evac.drill ? "drill_active" : "evac_active";
  $("evac-title").textContent = t($("evac-title").dataset.i18n);
  const message = evac.message ? (lang === "zh" ? evac.message.zh || evac.message.en : evac.message.en || evac.message.zh) : "";
  $("evac-meta").textContent = [evac.drill ? t("drill") : null, floorName(evac.floor),
    evac.issued_at ? `${t("since")} ${time(evac.issued_at)}` : null, message || evac.reason].filter(Boolean).join(" · ");
  $("evac-stale").hidden = !state.evacStaleSince;
  $("evac-stale").textContent = state.evacStaleSince ? t("evac_stale").replace("{t}", time(state.evacStaleSince)) : "";
  $("evac-also").hidden = state.evacOthers.length === 0;
  $("evac-also").textContent = state.evacOthers.length === 0 ? "" : `${t("evac_also")} ${state.evacOthers.map((e) =>
    `${e.drill ? t("drill") : t("evac_word")} ${floorName(e.floor)} ${t("since")} ${time(e.issued_at)}`).join(" · ")}`;
  const roll = state.roll;
  // redrawn only when it changed, so a poll never swallows a tap on the names
  if (!changed("roll", evac.id, roll, state.rollNamesOpen, [...state.zones.values()].map(zoneName), state.permissions)) return;
  const out = [];
  delete banner.dataset.rollClear;
  if (roll === "forbidden") {
    out.push(el("span", { text: t("roll_forbidden") }));
  } else if (roll) {
    const people = roll.people || [];
    const inside = roll.inside || people.filter((p) => p.status === "inside");
    const unknown = roll.unknown_on_roster || people.filter((p) => p.status === "unknown");
    // only those the roll call confirms count as out or safe: anyone else may still be in the building
    const accounted = people.filter((p) => p.status === "out" || p.status === "safe").length;
    const clear = inside.length + unknown.length === 0;
    banner.dataset.rollClear = String(clear);
    out.push(el("span", { "data-roll": "accounted", "data-n": accounted },
      `${t("roll_call")}: ${t("accounted")} ${accounted}/${people.length}`));
    const count = (key, text, n) => el("span", { class: n ? "roll-count open" : "roll-count", "data-roll": key,
      "data-n": n }, `${text} ${n}`);
    out.push(count("inside", t("missing"), inside.length), count("unknown", t("unaccounted"), unknown.length));
    if (clear) out.push(el("span", { class: "roll-clear", "data-roll": "clear", text: `✔ ${t("all_accounted")}` }));
    const names = [...inside, ...unknown];
    if (names.length) out.push(rollNames(evac.id, names));
  }
  $("evac-roll").replaceChildren(...out);
}

// Up to this many names are open under the counts; more would push the floor map off a phone's screen, so
// they wait behind a tap, and a tap is remembered for the evacuation until the page is reloaded. Behind the
// tap every name is listed: a warden looking for someone must find them there.
const ROLL_NAMES_OPEN = 8;
const HIDDEN_PERSON = "(hidden)";  // server/api/minimise.py: a person this account may not see
/** A person's name or id as the API gives it; the API's "(hidden)" in the page's language. */
const personText = (who) => (who === HIDDEN_PERSON ? t("hidden_person") : who);
function rollNames(evacuation, names) {
  const chosen = state.rollNamesOpen && state.rollNamesOpen.evacuation === evacuation ? state.rollNamesOpen.open : null;
  const details = el("details", { class: "roll-names", "data-roll": "names", "data-n": names.length,
    open: chosen === null ? names.length <= ROLL_NAMES_OPEN : chosen });
  // a click on the summary comes before the toggle: the choice survives the next poll's redraw
  details.append(el("summary", { text: t("roll_names").replace("{n}", names.length),
    onclick: () => { state.rollNamesOpen = { evacuation, open: !details.open }; } }));
  const people = el("div", { class: "roll-people" });
  for (const p of names) {
    const where = [p.zone ? zoneName(p.zone) : null, p.is_visitor ? t("visitor") : null,
      p.status === "unknown" ? t("unaccounted") : null].filter(Boolean).join(", ");
    const who = `${personText(p.name || p.person)}${where ? ` (${where})` : ""}`;
    const line = el("span", { class: "missing", "data-person": p.person, "data-status": p.status }, who);
    // the route checks `respond`; a name hidden from this account cannot be named to the server
    if (may("respond") && p.person !== HIDDEN_PERSON) {
      line.append(el("button", { type: "button", class: "btn mark-safe", text: t("mark_safe"),
        onclick: () => openMarkSafe(evacuation, p, who) }));
    }
    people.append(line);
  }
  details.append(people);
  return details;
}

// ---- loading and live updates -----------------------------------------------------------------------
function upsert(a) {
  state.alarms.set(a.id, a);
  if (state.linked && state.linked.id === a.id) state.linked = a;
  if (!OPEN.has(a.state)) state.alarms.delete(a.id);
  render();
}

const signatures = {};
/** True when `value` differs from the last one seen under `name` (so a poll that changed nothing redraws nothing). */
function changed(name, ...value) {
  const key = JSON.stringify([lang, ...value]);
  if (signatures[name] === key) return false;
  signatures[name] = key;
  return true;
}
function render() {
  const alarms = [...state.alarms.values()];
  const live = [...state.live];
  renderFloors();
  if (changed("map", state.floor, state.view, state.selected, alarms, live, [...state.zones.keys()],
    [...state.devices.keys()], $("map").parentElement.clientWidth, window.innerHeight)) {
    const focused = document.activeElement;
    const key = focused && focused.closest && focused.closest("#map [data-zone], #map [data-device]");
    const selector = key ? (key.dataset.device ? `#map [data-device="${key.dataset.device}"]` : `#map [data-zone="${key.dataset.zone}"]`) : null;
    renderMap();
    if (selector) { const again = document.querySelector(selector); if (again) again.focus(); }
  }
  const linkedAlarm = state.selected && state.selected.type === "alarm" ? state.selected.id : null;  // its row is highlighted
  if (changed("alarms", alarms, [...state.devices.keys()], state.permissions, state.accountZones, linkedAlarm,
    readable())) renderAlarms();
  if (changed("detail", state.selected, state.linked, alarms, live, state.chart, state.chartMetric)) renderDetail();
  $("permissions-unknown").hidden = state.permissions !== null || !readable();
  renderInspections();
  renderHistory();
  renderHealth();
  renderEvacuation();
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-label]")) node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  $("lang").setAttribute("aria-label", lang === "zh" ? "Switch to English" : "切换到中文");
  setStatus(connState);
  if (token) loadMe().then(render);
  renderLegend();
  render();
}

let connState = "connecting";
function setStatus(s) {
  connState = s;
  $("status").dataset.state = s;
  $("status").textContent = t(s);
}

async function loadFloor() {
  const floor = await api("/api/floor");
  state.site = floor.name || floor.site;
  $("site-name").textContent = state.site ? "· " + state.site : "";
  state.floors = floor.floors.length ? floor.floors : [...new Set(floor.zones.map((z) => z.floor))].map((id) => ({ id, name: id }));
  state.zones = new Map(floor.zones.map((z) => [z.id, z]));
  state.tz = floor.timezone || null;
  state.rules = floor.rules || {};
  state.families = floor.families || [];
  for (const d of floor.devices) state.devices.set(d.id, { ...(state.devices.get(d.id) || {}), ...d });
  if (!state.floor || !state.floors.some((f) => f.id === state.floor)) state.floor = state.floors[0] ? state.floors[0].id : null;
}

async function loadMe() {
  // Who is signed in, so a desk screen shows whose actions these are. The server still decides every action.
  try {
    const me = await api("/api/me");
    $("me").textContent = `${me.name} · ${me.roles.map((r) => ROLES[lang][r] || r).join(", ")}`;
    $("me").dataset.roles = me.roles.join(",");
    state.accountZones = me.zones;
    state.permissions = me.permissions;
  } catch { $("me").textContent = ""; state.accountZones = []; state.permissions = null; }
}
/** Until /api/me answers, every poll and stream (re)connect asks again. */
const loadMeIfUnknown = () => (state.permissions === null ? loadMe() : Promise.resolve());
async function loadDevices() {
  const list = await api("/api/devices");
  for (const d of list) {
    state.devices.set(d.id, { ...(state.devices.get(d.id) || {}), id: d.id, kind: d.kind, zone: d.zone, edge: d.edge,
      name: d.name || (state.devices.get(d.id) || {}).name || "", door_type: d.door_type });
    state.live.set(d.id, { online: d.online, last_seen: d.last_seen, metrics: d.metrics || {} });
  }
}
// The API's largest page. It lists open alarms most severe first, so a cut drops the least urgent; without it
// the default 500 hid a critical under 500 newer minor ones (a floor in an outage), and the count read 500.
const ALARMS_LIMIT = 5000;
async function loadAlarms() {
  const list = await api(`/api/alarms?state=open&limit=${ALARMS_LIMIT}`);
  state.alarms = new Map(list.map((a) => [a.id, a]));
  state.alarmsCut = list.length >= ALARMS_LIMIT;
  state.alarmsRead = true;
}
async function loadInspections() {
  try {
    const [due, overdue] = await Promise.all([api("/api/inspections?status=due"), api("/api/inspections?status=overdue")]);
    const seen = new Map();
    for (const task of [...overdue, ...due]) if (!seen.has(task.id)) seen.set(task.id, task);
    state.inspections = [...seen.values()];
    state.inspectionsRead = true;
  } catch { /* the last list read stays; never read, none is claimed */ }
}
async function loadHealth() {
  try {
    const r = await fetch("/api/health");
    state.health = await r.json();
  } catch { state.health = null; }
}
let evacCheckedAt = 0;
async function loadEvacuation() {
  // The evacuation API may not exist on this server yet: a 404 hides the banner and we check again later.
  if (state.evacMissing && Date.now() - evacCheckedAt < 60000) return;
  evacCheckedAt = Date.now();
  try {
    const list = await api("/api/evacuations");
    state.evacMissing = false;
    const items = Array.isArray(list) ? list : list.items || [];
    // The list is newest first; a real evacuation goes before every drill, so a later drill on another
    // floor never takes the banner from it. The others are named under the banner.
    const active = items.filter((e) => e.state === "active").sort((a, b) => Number(!!a.drill) - Number(!!b.drill));
    const shown = active[0] || null;
    const roll = shown ? await api(`/api/evacuations/${encodeURIComponent(shown.id)}/roll-call`)
      .catch((e) => { if (e.status === 403) return "forbidden"; throw e; }) : null;
    state.evac = shown; state.roll = roll; state.evacOthers = active.slice(1);
    state.evacReadAt = new Date().toISOString(); state.evacStaleSince = null;
  } catch (e) {
    if (e.status === 404 || e.status === 405) {
      state.evacMissing = true;
      state.evac = null; state.roll = null; state.evacOthers = []; state.evacStaleSince = null;
    } else if (state.evac && !state.evacStaleSince) {
      // An evacuation is not over because this page cannot read the server (a restart, a lost network, a
      // refused token): the banner and its last roll call stay, saying since when they are not updated.
      state.evacStaleSince = state.evacReadAt;
    }
  }
}

async function loadCuts() {
  // A cut (delayed or automatic) is done or fails without a change of its alarm (no stream event): re-read those alarms.
  const moving = [...state.alarms.values()].filter((a) => (a.cut && CUT_MOVING.has(a.cut.state))
    || (a.auto_cut || []).some((c) => CUT_MOVING.has(c.state)));
  for (const a of await Promise.all(moving.map((m) => api(`/api/alarms/${m.id}`).catch(() => null)))) {
    if (a) { state.alarms.set(a.id, a); if (!OPEN.has(a.state)) state.alarms.delete(a.id); }
  }
}

async function refresh() {
  await Promise.allSettled([loadMeIfUnknown(), loadDevices(), loadHealth(), loadEvacuation(), loadCuts()]);
  render();
}
let refreshTimer = null;
function refreshSoon() {
  // An alarm event usually comes with new readings: refresh devices shortly, at most once per burst.
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => { refreshTimer = null; await refresh(); if (state.selected) loadChart(); }, 300);
}

let stream = null;
let backoff = 1000;
async function listen() {
  // fetch-based SSE so the bearer token goes in a header, not in the URL. Reconnects with backoff and
  // reloads the open alarms on every (re)connect, so nothing missed while away stays missed.
  if (stream) stream.abort();
  const controller = new AbortController();
  stream = controller;
  let watchdog = null;
  const kick = () => { clearTimeout(watchdog); watchdog = setTimeout(() => controller.abort(), 40000); };
  try {
    const response = await fetch("/api/alarms/stream", { headers: { "Authorization": "Bearer " + token,
      "Accept": "text/event-stream" }, signal: controller.signal, cache: "no-store" });
    if (response.status === 401) { showLogin(); return; }
    if (!response.ok || !response.body) throw new Error(response.statusText);
    await Promise.all([loadAlarms(), loadMeIfUnknown()]);
    // A read refused meanwhile signed the page out and closed this stream: it is not live.
    if (stream !== controller) return;
    render();
    setStatus("live");
    backoff = 1000;
    kick();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      kick();
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        try { upsert(JSON.parse(data)); refreshSoon(); } catch { /* a malformed event is skipped */ }
      }
    }
  } catch { /* fall through to reconnect */ }
  clearTimeout(watchdog);
  if (stream !== controller) return;
  setStatus(navigator.onLine === false ? "offline" : "reconnecting");
  setTimeout(listen, backoff);
  backoff = Math.min(backoff * 2, 15000);
}

/** The sign-in box: no token yet, or the server refused the one given (expired, revoked). Not "Offline": the
 * network may be fine. What the page shows stays, but claims nothing current (readable() is false). */
function showLogin() {
  const refused = !!token && $("login").hidden;
  $("login").hidden = false;
  if (refused) $("login-why").hidden = false;
  setStatus("signed_out");
  // The stream stops with the token: left open, its watchdog or the server's close would "reconnect" and
  // flip the page back to polling with a token the server already refused.
  if (stream) { const closing = stream; stream = null; closing.abort(); }
  if (state.evac && !state.evacStaleSince) state.evacStaleSince = state.evacReadAt;
  render();
}

async function start() {
  $("login").hidden = true;
  $("login-why").hidden = true;
  setStatus("connecting");
  try {
    await loadFloor();
  } catch (e) {
    if (e.status === 401) return;
    setStatus("reconnecting");
    setTimeout(start, 3000);
    return;
  }
  state.loaded = true;
  await Promise.allSettled([loadMe(), loadDevices(), loadAlarms(), loadHealth(), loadInspections(), loadEvacuation()]);
  render();
  listen();
  openTarget();
}

document.addEventListener("DOMContentLoaded", () => {
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("floorwatch.lang", lang);
    applyLanguage();
  });
  $("save").addEventListener("click", () => {
    token = $("token").value.trim();
    localStorage.setItem("floorwatch.token", token);
    start();
  });
  $("detail-close").addEventListener("click", () => { state.selected = null; render(); });
  $("map-back").addEventListener("click", () => { state.view = null; render(); });
  $("history-open").addEventListener("click", toggleHistory);
  $("history-close").addEventListener("click", () => { state.history = null; renderHistory(); });
  $("history-csv").addEventListener("click", downloadHistoryCsv);
  $("history-report").addEventListener("click", openHistoryReport);
  for (const [id, key] of [["filter-severity", "severity"], ["filter-zone", "zone"], ["filter-family", "family"]]) {
    $(id).addEventListener("change", (e) => { state.filters[key] = e.target.value; renderAlarms(); });
  }
  window.addEventListener("resize", () => render());
  $("action-form").addEventListener("submit", submitAction);
  $("action-cancel").addEventListener("click", () => { $("action-dialog").close(); pending = null; });
  window.addEventListener("online", () => listen());
  window.addEventListener("hashchange", () => { readHash(); token = localStorage.getItem("floorwatch.token"); openTarget(); });
  setInterval(() => { if (token && connState !== "offline" && connState !== "signed_out") refresh(); }, POLL_MS);
  setInterval(() => { if (token && connState !== "signed_out") loadInspections().then(renderInspections); }, 60000);
  applyLanguage();
  if (token) start(); else showLogin();
});
