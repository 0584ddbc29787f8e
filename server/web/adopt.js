// The live page's "unknown devices" panel: devices an edge heard on its floor broker that are in no
// configuration (GET /api/unknown-devices), each with the edge and site `devices:` entries that adopt it.
// Uses app.js's `api` and `lang` (loaded before this file). Device data goes in as text, never as HTML:
// an address is whatever a device on the floor chose to call itself.
"use strict";

(() => {
  const TEXT = {
    zh: {
      title: "未登记设备", hint: "边缘网关在楼层 MQTT 上发现、但任何配置都未登记的设备。登记:把下面两段分别粘贴到网关配置和站点文件的 devices: 下,设置区域与额定电流,运行 floorwatch site --check,再重启网关与服务器;或拆除设备。然后关闭该告警。",
      edge: "网关", since: "发现于", topic: "公告主题", adopt: "如何登记", edge_file: "网关配置 (边缘网关 {edge}) devices: 下", site_file: "站点文件 devices: 下",
      guessed: "类型为推测:请核对 kind(插排为 strip_meter;温度探头另需 sensor:)", no_draft: "网关未给出厂商地址,无法生成草稿",
    },
    en: {
      title: "Unknown devices", hint: "Devices an edge heard on its floor broker that no configuration lists. To adopt one, paste the two entries under devices: in the edge file and the site file, set the zone and rating, run floorwatch site --check, restart the edge and the server; or remove the device. Then close its alarm.",
      edge: "edge", since: "since", topic: "announced on", adopt: "How to adopt", edge_file: "edge file (edge {edge}), under devices:", site_file: "site file, under devices:",
      guessed: "kind is a guess: check it (strip_meter for a strip; a probe also needs sensor:)", no_draft: "the edge named no vendor address: no draft",
    },
  };
  const say = (key) => (TEXT[lang] ?? TEXT.en)[key] ?? key;
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  };
  let devices = [];

  function draft(label, yaml) {
    const box = el("div", "adopt-draft");
    box.append(el("div", "meta", label));
    const pre = el("pre", "adopt-yaml", yaml);
    pre.tabIndex = 0;
    box.append(pre);
    return box;
  }

  function render() {
    const card = document.getElementById("unknown-card");
    if (!card) return;
    document.getElementById("unknown-title-text").textContent = say("title");
    document.getElementById("unknown-count").textContent = devices.length ? `(${devices.length})` : "";
    document.getElementById("unknown-hint").textContent = say("hint");
    const list = document.getElementById("unknown-devices");
    list.replaceChildren(...devices.map((d) => {
      const item = el("li", "unknown-device");
      item.dataset.device = d.device;
      item.dataset.edge = d.edge;
      const head = el("div", "unknown-head");
      head.append(el("strong", "", d.address ?? d.device), " ", el("span", "meta", d.vendor ?? ""));
      item.append(head);
      const when = new Date(d.since).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
      item.append(el("div", "meta", `${say("edge")} ${d.edge} · ${say("since")} ${when}`));
      if (d.topic) item.append(el("div", "meta", `${say("topic")} ${d.topic}`));
      const details = el("details", "adopt");
      details.append(el("summary", "", say("adopt")));
      if (d.edge_yaml && d.site_yaml) {
        details.append(draft(say("edge_file").replace("{edge}", d.edge), d.edge_yaml),
                       draft(say("site_file"), d.site_yaml));
        if (d.kind_guessed) details.append(el("p", "meta adopt-guess", say("guessed")));
      } else {
        details.append(el("p", "meta", say("no_draft")));
      }
      item.append(details);
      return item;
    }));
    card.hidden = devices.length === 0;
  }

  async function load() {
    try {
      devices = await api("/api/unknown-devices");
    } catch { return; /* app.js shows sign-in and connection problems */ }
    const open = new Set([...document.querySelectorAll("#unknown-devices details[open]")]
      .map((d) => d.closest("li").dataset.edge + "/" + d.closest("li").dataset.device));
    render();
    for (const li of document.querySelectorAll("#unknown-devices li")) {
      if (open.has(li.dataset.edge + "/" + li.dataset.device)) li.querySelector("details").open = true;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    // asked only with a token the server has not refused (the sign-in box is hidden): a 401 is a console error
    const signedIn = () => !!localStorage.getItem("floorwatch.token") && document.getElementById("login").hidden;
    document.getElementById("lang").addEventListener("click", () => setTimeout(() => { if (signedIn()) load(); }, 0));
    if (signedIn()) load();
    setInterval(() => { if (signedIn()) load(); }, 5000);
  });
})();
