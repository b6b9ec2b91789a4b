/**
 * The dashboard page: static HTML, CSS and one script, shipped as strings (no build step, no library, nothing loaded
 * from elsewhere). The script opens `/dashboard/events` and renders each state it receives with `textContent` only,
 * so nothing a server sends is ever parsed as markup.
 *
 * @internal
 */

const style = `
:root {
  --bg: #f5f7fa; --card: #ffffff; --ink: #18202b; --muted: #667085; --line: #e4e8ee; --head: #0f1720;
  --ok: #12a150; --ok-bg: #e7f6ee; --warn: #b7791f; --warn-bg: #fdf3e1; --bad: #d92d20; --bad-bg: #fdecea;
  --info: #2563eb; --info-bg: #e8effd; --idle: #667085; --idle-bg: #eef0f3; --open: #c2410c; --open-bg: #fdeee6;
  --bar: #3b82f6; --fail: #ef4444; --p95: #7c3aed;
}
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body { background: var(--bg); color: var(--ink); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; -webkit-font-smoothing: antialiased; }
header { background: var(--head); color: #e6edf5; display: flex; align-items: center; gap: 14px; padding: 12px 24px; }
header .brand { font-weight: 650; font-size: 16px; letter-spacing: .2px; display: flex; align-items: center; gap: 8px; }
header .brand .logo { width: 22px; height: 22px; border-radius: 6px; background: linear-gradient(135deg,#3b82f6,#7c3aed);
  display: inline-block; }
header .sub { color: #9aa8b8; }
header .replica { background: #1f2a37; border: 1px solid #2e3b4b; color: #cdd8e4; border-radius: 999px;
  padding: 2px 10px; font-size: 12px; }
header .spacer { flex: 1; }
header .live { display: flex; align-items: center; gap: 6px; font-size: 12px; color: #b8c4d2; }
header .dot { width: 8px; height: 8px; border-radius: 50%; background: #667085; }
header .live.on .dot { background: #22c55e; box-shadow: 0 0 0 3px rgba(34,197,94,.2); }
header .live.off .dot { background: #f59e0b; }
main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); margin: 26px 0 10px;
  font-weight: 600; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; }
.kpis { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 12px; }
.kpi { padding: 14px 16px; }
.kpi .label { color: var(--muted); font-size: 12px; }
.kpi .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi .note { color: var(--muted); font-size: 12px; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi.alert .value { color: var(--bad); }
.chart { padding: 14px 16px 8px; margin-top: 12px; }
.chart .top { display: flex; align-items: baseline; gap: 16px; }
.chart .title { font-weight: 600; }
.legend { display: flex; gap: 14px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
.chart svg { width: 100%; height: 190px; display: block; margin-top: 6px; }
.chart svg text { font-size: 10px; fill: var(--muted); font-family: inherit; }
.servers { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
.server { padding: 14px 16px; }
.server .row1 { display: flex; align-items: center; gap: 10px; }
.server .name { font-weight: 650; font-size: 15px; }
.server .meta { color: var(--muted); font-size: 12px; margin-left: auto; text-align: right; }
.pill { display: inline-flex; align-items: center; gap: 6px; border-radius: 999px; padding: 1px 9px; font-size: 12px;
  font-weight: 600; }
.pill::before { content: ""; width: 6px; height: 6px; border-radius: 50%; background: currentColor; }
.s-connected { color: var(--ok); background: var(--ok-bg); }
.s-connecting { color: var(--info); background: var(--info-bg); }
.s-failing { color: var(--bad); background: var(--bad-bg); }
.s-circuit_open { color: var(--open); background: var(--open-bg); }
.s-rate_limited { color: var(--warn); background: var(--warn-bg); }
.s-idle { color: var(--idle); background: var(--idle-bg); }
.reason { margin-top: 10px; border-radius: 8px; padding: 8px 10px; font-size: 12.5px; background: var(--bad-bg);
  color: #7a1a12; word-break: break-word; }
.reason.open { background: var(--open-bg); color: #7c2d12; }
.reason.limited { background: var(--warn-bg); color: #744210; }
.reason b { font-weight: 650; margin-right: 6px; }
.stats { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 8px; margin-top: 12px; }
.stat .k { color: var(--muted); font-size: 11px; }
.stat .v { font-weight: 600; font-variant-numeric: tabular-nums; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { text-align: left; color: var(--muted); font-weight: 500; font-size: 11.5px; padding: 6px 8px;
  border-bottom: 1px solid var(--line); }
td { padding: 6px 8px; border-bottom: 1px solid var(--line); font-size: 13px; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; }
.tools { margin-top: 12px; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.tools td:first-child { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.empty { color: var(--muted); font-size: 12.5px; padding: 10px 8px; }
.two { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 3fr); gap: 12px; }
.rules td:first-child { font-weight: 600; }
.badge { border-radius: 999px; padding: 1px 8px; font-size: 11.5px; font-weight: 600; white-space: nowrap; }
.b-ok { color: var(--ok); background: var(--ok-bg); }
.b-fire { color: var(--bad); background: var(--bad-bg); }
.b-off { color: var(--idle); background: var(--idle-bg); }
.fired { color: var(--bad); font-size: 12px; margin-top: 3px; }
.errors td.msg { word-break: break-word; color: #3b4352; }
.errors td.when { color: var(--muted); white-space: nowrap; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.type { color: var(--bad); font-weight: 600; font-size: 12px; white-space: nowrap; }
.shared-kpis { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; }
.three { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; margin-top: 12px; }
.three h3 { font-size: 12px; color: var(--muted); font-weight: 600; margin: 10px 12px 4px; }
.tag { font-size: 11px; font-weight: 600; color: var(--info); background: var(--info-bg); border-radius: 999px;
  padding: 1px 8px; margin-left: 6px; text-transform: none; letter-spacing: 0; }
.tag.own { color: var(--idle); background: var(--idle-bg); }
.use { display: inline-block; width: 60px; height: 6px; border-radius: 3px; background: var(--line);
  vertical-align: middle; margin-right: 6px; overflow: hidden; }
.use i { display: block; height: 100%; background: var(--bar); }
.use.full i { background: var(--bad); }
.shared-error { margin-bottom: 10px; border-radius: 8px; padding: 8px 10px; font-size: 12.5px; background: var(--warn-bg);
  color: #744210; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 28px; }
@media (max-width: 1100px) { .kpis { grid-template-columns: repeat(3, minmax(0, 1fr)); } .two { grid-template-columns: 1fr; } }
`

/** The page's script (its SHA-256 is in the page's Content-Security-Policy). @internal */
export const script = `
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (attrs[k] === undefined || attrs[k] === null) continue;
      if (k === "text") node.textContent = String(attrs[k]);
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    if (children) children.forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    return node;
  }
  function num(n) { return n === null || n === undefined ? "\\u2014" : n.toLocaleString("en-US"); }
  function ms(n) {
    if (n === null || n === undefined) return "\\u2014";
    return n >= 1000 ? (n / 1000).toFixed(2) + " s" : n >= 10 ? Math.round(n) + " ms" : n.toFixed(1) + " ms";
  }
  function pct(n) { return n === null || n === undefined ? "\\u2014" : (n >= 99.95 || n === 0 ? n.toFixed(0) : n.toFixed(1)) + " %"; }
  function bytes(n) {
    if (n === null || n === undefined) return "\\u2014";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }
  function ago(at, now) {
    var s = Math.max(0, Math.round((now - at) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return new Date(at).toLocaleTimeString();
  }
  var labels = { connected: "Connected", connecting: "Connecting", failing: "Failing", circuit_open: "Circuit open",
    rate_limited: "Rate-limited", idle: "Idle" };
  var transports = { stdio: "stdio", http: "Streamable HTTP", sse: "SSE", memory: "in-memory" };

  function kpi(id, label, value, note, extra) {
    return el("div", { class: "card kpi" + (extra || ""), id: id }, [
      el("div", { class: "label", text: label }),
      el("div", { class: "value", text: value }),
      el("div", { class: "note", text: note })
    ]);
  }

  function rate(history, seconds, interval) {
    var n = Math.max(1, Math.round(seconds * 1000 / interval)), sum = 0, pts = history.slice(-n);
    pts.forEach(function (p) { sum += p[1]; });
    return pts.length === 0 ? 0 : sum / (pts.length * interval / 1000);
  }

  function renderKpis(s) {
    var firing = 0;
    s.alerts.forEach(function (a) { firing += a.firing.length; });
    var r = rate(s.history, 10, s.intervalMillis);
    var box = $("kpis");
    box.replaceChildren(
      kpi("kpi-calls", "Calls", num(s.totals.calls), (r >= 10 ? Math.round(r) : r.toFixed(1)) + " /s over 10 s"),
      kpi("kpi-success", "Success rate", pct(s.totals.successRate), num(s.totals.inFlight) + " in flight"),
      kpi("kpi-p95", "p95 latency", ms(s.totals.p95), "slowest server, sliding window"),
      kpi("kpi-cache", s.shared ? "Cache hit rate (this replica)" : "Cache hit rate", pct(s.cache.hitRate),
        s.cache.entries === null ? num(s.cache.hits) + " hits \\u00b7 " + num(s.cache.misses) + " misses"
          : num(s.cache.entries) + " entries \\u00b7 " + bytes(s.cache.bytes)),
      kpi("kpi-pool", "Pool", num(s.pool.sessions) + (s.pool.sessions === 1 ? " session" : " sessions"),
        num(s.pool.inFlight) + " in flight \\u00b7 " + num(s.pool.waiting) + " waiting"),
      kpi("kpi-alerts", "Alerts firing", num(firing), firing === 0 ? "all rules clear" : "see alert rules",
        firing > 0 ? " alert" : "")
    );
  }

  function renderChart(s) {
    var chart = $("chart");
    var W = 1000, H = 190, L = 44, R = 52, T = 10, B = 22;
    var bucketMs = 5000, span = 300000;
    var now = s.at, buckets = [];
    for (var i = 0; i < span / bucketMs; i++) buckets.push({ calls: 0, fail: 0, p95: null, n: 0 });
    s.history.forEach(function (p) {
      var age = now - p[0];
      if (age < 0 || age >= span) return;
      var b = buckets[buckets.length - 1 - Math.floor(age / bucketMs)];
      b.calls += p[1]; b.fail += p[2]; b.n++;
      if (p[3] !== null) b.p95 = b.p95 === null ? p[3] : Math.max(b.p95, p[3]);
    });
    var maxRate = 1, maxP = 1;
    buckets.forEach(function (b) {
      maxRate = Math.max(maxRate, b.calls / (bucketMs / 1000));
      if (b.p95 !== null) maxP = Math.max(maxP, b.p95);
    });
    function nice(x) { var e = Math.pow(10, Math.floor(Math.log10(x))), f = x / e;
      return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * e; }
    maxRate = nice(maxRate); maxP = nice(maxP);
    var w = (W - L - R) / buckets.length, h = H - T - B;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img",
      "aria-label": "calls per second and p95 latency over the last 5 minutes" });
    for (var g = 0; g <= 4; g++) {
      var y = T + h - (h * g) / 4;
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#e4e8ee", "stroke-width": 1 }));
      var lt = svg("text", { x: L - 6, y: y + 3, "text-anchor": "end" });
      lt.textContent = (maxRate * g / 4).toFixed(maxRate >= 8 ? 0 : 1);
      root.appendChild(lt);
      var rt = svg("text", { x: W - R + 6, y: y + 3 });
      rt.textContent = ms(maxP * g / 4);
      root.appendChild(rt);
    }
    var pts = [];
    buckets.forEach(function (b, i) {
      var x = L + i * w, r = b.calls / (bucketMs / 1000), fr = b.fail / (bucketMs / 1000);
      var bh = (r / maxRate) * h, fh = (fr / maxRate) * h;
      if (bh > 0) root.appendChild(svg("rect", { x: x + 1, y: T + h - bh, width: Math.max(1, w - 2), height: bh,
        fill: "#3b82f6", rx: 1.5, opacity: 0.85 }));
      if (fh > 0) root.appendChild(svg("rect", { x: x + 1, y: T + h - fh, width: Math.max(1, w - 2), height: fh,
        fill: "#ef4444", rx: 1.5 }));
      if (b.p95 !== null && b.n > 0) pts.push((x + w / 2).toFixed(1) + "," + (T + h - (b.p95 / maxP) * h).toFixed(1));
    });
    if (pts.length > 1) root.appendChild(svg("polyline", { points: pts.join(" "), fill: "none", stroke: "#7c3aed",
      "stroke-width": 2, "stroke-linejoin": "round", "vector-effect": "non-scaling-stroke" }));
    pts.forEach(function (p) { var c = p.split(",");
      root.appendChild(svg("circle", { cx: c[0], cy: c[1], r: 2.2, fill: "#7c3aed" })); });
    for (var m = 0; m <= 5; m++) {
      var tx = svg("text", { x: L + ((W - L - R) * m) / 5, y: H - 6, "text-anchor": m === 0 ? "start" : m === 5 ? "end" : "middle" });
      tx.textContent = m === 5 ? "now" : "\\u2212" + (5 - m) + " min";
      root.appendChild(tx);
    }
    var ax = svg("text", { x: 2, y: T + 8 }); ax.textContent = "calls/s"; root.appendChild(ax);
    var ay = svg("text", { x: W - 2, y: T + 8, "text-anchor": "end" }); ay.textContent = "p95"; root.appendChild(ay);
    chart.replaceChildren(root);
  }

  function stat(k, v) { return el("div", { class: "stat" }, [el("div", { class: "k", text: k }), el("div", { class: "v", text: v })]); }

  function renderServer(sv, now) {
    var meta = transports[sv.transport] || sv.transport;
    meta += sv.protocolVersion ? " \\u00b7 protocol " + sv.protocolVersion : " \\u00b7 not negotiated yet";
    var reason = null;
    if (sv.state === "circuit_open" && sv.circuit) {
      var left = sv.circuit.retryAfterMillis;
      reason = el("div", { class: "reason open", "data-role": "reason" }, [
        el("b", { text: "Circuit open" }),
        document.createTextNode(left === null ? "probing" : "retry in " + (left / 1000).toFixed(1) + " s"),
        sv.reason ? document.createTextNode(" \\u2014 last: " + sv.reason.type + ": " + sv.reason.message) : null
      ]);
    } else if (sv.state === "failing" && sv.reason) {
      reason = el("div", { class: "reason", "data-role": "reason" }, [
        el("b", { text: sv.reason.type }), document.createTextNode(sv.reason.message),
        el("span", { class: "when", text: " \\u00b7 " + ago(sv.reason.at, now) })
      ]);
    } else if (sv.state === "rate_limited") {
      reason = el("div", { class: "reason limited", "data-role": "reason" }, [
        el("b", { text: "Rate-limited" }),
        document.createTextNode(num(sv.throttle.rejections) + " calls refused, " + num(sv.throttle.waits) + " waited")
      ]);
    }
    var rows = sv.tools.map(function (t) {
      return el("tr", { "data-tool": sv.server + "." + t.tool }, [
        el("td", { text: t.tool }),
        el("td", { class: "num calls", text: num(t.calls) }),
        el("td", { class: "num", text: pct(t.successRate) }),
        el("td", { class: "num", text: ms(t.p50) }),
        el("td", { class: "num", text: ms(t.p95) })
      ]);
    });
    var tools = el("div", { class: "tools" }, [rows.length === 0
      ? el("div", { class: "empty", text: "No calls yet." })
      : el("table", null, [
        el("thead", null, [el("tr", null, [el("th", { text: "Tool" }), el("th", { class: "num", text: "Calls" }),
          el("th", { class: "num", text: "Success" }), el("th", { class: "num", text: "p50" }),
          el("th", { class: "num", text: "p95" })])]),
        el("tbody", null, rows)
      ])]);
    return el("div", { class: "card server", "data-server": sv.server, "data-state": sv.state }, [
      el("div", { class: "row1" }, [
        el("span", { class: "name", text: sv.server }),
        el("span", { class: "pill s-" + sv.state, "data-role": "state", text: labels[sv.state] || sv.state }),
        el("span", { class: "meta", text: meta })
      ]),
      reason,
      el("div", { class: "stats" }, [
        stat("Calls", num(sv.calls)), stat("Success", pct(sv.successRate)), stat("p50", ms(sv.p50)),
        stat("p95", ms(sv.p95)),
        stat("Sessions", num(sv.sessions.open) + (sv.sessions.connecting ? " (+" + sv.sessions.connecting + ")" : "") +
          " \\u00b7 " + num(sv.sessions.waiting) + " waiting"),
        stat("Cache hits", pct(sv.cache.hitRate))
      ]),
      tools
    ]);
  }

  function renderRules(s) {
    var rows = s.alerts.map(function (a) {
      var badge = !a.enabled ? el("span", { class: "badge b-off", text: "off" })
        : a.firing.length > 0 ? el("span", { class: "badge b-fire", text: "firing" })
        : el("span", { class: "badge b-ok", text: "clear" });
      var cell = el("td", null, [document.createTextNode(a.condition || "\\u2014")]);
      a.firing.forEach(function (f) { cell.appendChild(el("div", { class: "fired", text: f.message })); });
      return el("tr", { "data-rule": a.rule }, [el("td", { text: a.label }), cell, el("td", { class: "num" }, [badge])]);
    });
    $("rules").replaceChildren(el("table", { class: "rules" }, [
      el("thead", null, [el("tr", null, [el("th", { text: "Rule" }), el("th", { text: "Fires when" }),
        el("th", { class: "num", text: "State" })])]),
      el("tbody", null, rows)
    ]));
  }

  function renderErrors(s) {
    if (s.errors.length === 0) { $("errors").replaceChildren(el("div", { class: "empty", text: "No errors." })); return; }
    var rows = s.errors.map(function (e) {
      return el("tr", null, [
        el("td", { class: "when", text: ago(e.at, s.at) }),
        el("td", { class: "mono", text: e.server + (e.tool ? "." + e.tool : "") }),
        el("td", { class: "type", text: e.type }),
        el("td", { class: "msg", text: e.message })
      ]);
    });
    $("errors").replaceChildren(el("table", { class: "errors" }, [
      el("thead", null, [el("tr", null, [el("th", { text: "When" }), el("th", { text: "Where" }),
        el("th", { text: "Type" }), el("th", { text: "Message" })])]),
      el("tbody", null, rows)
    ]));
  }

  function renderShared(s) {
    var section = $("shared-section"), sh = s.shared;
    $("own-tag").hidden = !sh;
    if (!sh) { section.hidden = true; return; }
    section.hidden = false;
    var open = sh.circuits.filter(function (c) { return c.state === "open"; }).length;
    var self = null;
    sh.replicas.forEach(function (r) { if (r.self) self = r; });
    var cache = sh.cache || { entries: null, bytes: null, hitRate: null, hits: null, misses: null };
    var kpis = el("div", { class: "shared-kpis" }, [
      kpi("shared-replicas", "Replicas", num(sh.replicas.length), "publishing to Redis"),
      kpi("shared-hit-rate", "Cache hit rate (all replicas)", pct(cache.hitRate),
        num(cache.hits) + " hits \u00b7 " + num(cache.misses) + " misses"),
      kpi("shared-entries", "Shared cache", num(cache.entries) + " entries", bytes(cache.bytes)),
      kpi("shared-circuits", "Circuits open", num(open), "of " + sh.circuits.length + " remote servers",
        open > 0 ? " alert" : "")
    ]);
    function table(head, rows, empty) {
      if (rows.length === 0) return el("div", { class: "empty", text: empty });
      return el("table", null, [el("thead", null, [el("tr", null, head.map(function (h, i) {
        return el("th", { class: i > 0 ? "num" : null, text: h }); }))]), el("tbody", null, rows)]);
    }
    var replicas = sh.replicas.map(function (r) {
      return el("tr", { "data-replica": r.id }, [
        el("td", null, [document.createTextNode(r.name ? r.name + " (" + r.id + ")" : r.id),
          r.self ? el("span", { class: "tag own", text: "this one" }) : null]),
        el("td", { class: "num", text: num(r.calls) }),
        el("td", { class: "num", text: pct(r.hitRate) }),
        el("td", { class: "num", text: (r.ageMillis / 1000).toFixed(0) + " s ago" })
      ]);
    });
    var limits = sh.limits.map(function (l) {
      var share = l.used === null ? 0 : Math.min(1, l.used / l.limit);
      return el("tr", { "data-limit": l.server + (l.tool ? "." + l.tool : "") + "/" + l.window }, [
        el("td", { class: "mono", text: l.server + (l.tool ? "." + l.tool : "") }),
        el("td", { class: "num", text: "per " + l.window }),
        el("td", { class: "num" }, [el("span", { class: "use" + (share >= 1 ? " full" : "") }, [
          el("i", { style: "width:" + Math.round(share * 100) + "%" })]),
          el("span", { class: "used", text: num(l.used) + " / " + num(l.limit) })])
      ]);
    });
    var circuits = sh.circuits.map(function (c) {
      var badge = c.state === "open" ? el("span", { class: "badge b-fire", text: "open" })
        : c.state === "half_open" ? el("span", { class: "badge b-off", text: "half-open" })
        : c.state === "closed" ? el("span", { class: "badge b-ok", text: "closed" })
        : el("span", { class: "badge b-off", text: "unknown" });
      return el("tr", { "data-circuit": c.server, "data-state": c.state || "unknown" }, [
        el("td", { class: "mono", text: c.server }),
        el("td", { class: "num" }, [badge]),
        el("td", { class: "num", text: c.retryAfterMillis === null ? "\u2014" : "retry in " + (c.retryAfterMillis / 1000).toFixed(1) + " s" })
      ]);
    });
    var parts = sh.error
      ? [el("div", { class: "shared-error", text: sh.error + " \u2014 the figures below may be stale" })] : [];
    parts.push(kpis,
      el("div", { class: "three" }, [
        el("div", { class: "card" }, [el("h3", { text: "Replicas" }),
          table(["Replica", "Calls", "Cache hits", "Published"], replicas, "No replica has published yet.")]),
        el("div", { class: "card" }, [el("h3", { text: "Rate limits, current window" }),
          table(["Limit", "Window", "Used"], limits, "No rate limits configured.")]),
        el("div", { class: "card" }, [el("h3", { text: "Circuits of remote servers" }),
          table(["Server", "State", ""], circuits, "No remote server with a breaker.")])
      ]));
    $("shared").replaceChildren.apply($("shared"), parts);
  }

  function render(s) {
    if (s.replica) {
      var r = $("replica");
      r.hidden = false;
      r.textContent = "replica " + (s.replica.name ? s.replica.name + " (" + s.replica.id + ")" : s.replica.id);
      document.title = "mcp-bridge \\u00b7 " + (s.replica.name || s.replica.id);
    }
    renderKpis(s);
    renderChart(s);
    renderShared(s);
    $("server-count").textContent = "(" + s.servers.length + ")";
    $("servers").replaceChildren.apply($("servers"), s.servers.map(function (sv) { return renderServer(sv, s.at); }));
    renderRules(s);
    renderErrors(s);
    $("updated").textContent = "updated " + new Date(s.at).toLocaleTimeString();
    document.body.setAttribute("data-at", String(s.at));
  }

  function live(on) {
    var l = $("live");
    l.className = "live " + (on ? "on" : "off");
    $("live-text").textContent = on ? "Live" : "Reconnecting\\u2026";
  }

  var source = new EventSource("dashboard/events");
  source.onopen = function () { live(true); };
  source.onerror = function () { live(false); };
  source.onmessage = function (event) { live(true); render(JSON.parse(event.data)); };
})();
`

/** The whole page. @internal */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mcp-bridge</title>
<style>${style}</style>
</head>
<body>
<header>
  <span class="brand"><span class="logo"></span>mcp-bridge</span>
  <span class="sub">Dashboard</span>
  <span class="replica" id="replica" hidden></span>
  <span class="spacer"></span>
  <span class="live" id="live"><span class="dot"></span><span id="live-text">Connecting\u2026</span></span>
  <span class="sub" id="updated"></span>
</header>
<main>
  <section class="kpis" id="kpis"></section>
  <section class="card chart">
    <div class="top">
      <span class="title">Calls and p95, last 5 minutes</span>
      <span class="legend"><span><i style="background:#3b82f6"></i>calls/s</span><span><i style="background:#ef4444"></i>failures/s</span><span><i style="background:#7c3aed"></i>p95 (slowest server)</span></span>
    </div>
    <div id="chart"></div>
  </section>
  <section id="shared-section" hidden>
    <h2>Shared across replicas <span class="tag">Redis</span></h2>
    <div id="shared"></div>
  </section>
  <h2>Servers <span id="server-count"></span> <span class="tag own" id="own-tag" hidden>this replica</span></h2>
  <section class="servers" id="servers"></section>
  <div class="two">
    <section><h2>Alert rules</h2><div class="card" id="rules"></div></section>
    <section><h2>Recent errors</h2><div class="card" id="errors"></div></section>
  </div>
  <footer>mcp-bridge \u00b7 secrets are scrubbed from every message shown here</footer>
</main>
<script>${script}</script>
</body>
</html>
`
