// The watchdog dashboard's script: it keeps the page the server rendered
// live from GET /v1/stream (server-sent events), counts ages every second,
// and shows a service's incident history on demand. Everything from the
// server is written with textContent or as an attribute value, never as
// HTML: service ids and node names are data, not markup.

const RANK = { down: 0, paused: 2, new: 3, up: 3 };
// An unknown status sorts right after down, where someone will notice it.
const rank = (s) => (Object.hasOwn(RANK, s) ? RANK[s] : 1);
const COLUMNS = 7;
const PAGE_SIZE = 100; // as the server's pageSize

const table = document.getElementById("svc-table");
const rows = new Map(); // service id -> {id, tr, hist, sig, seq}, for the rows shown
// live is what the stream said: every service and node, and this node's
// own facts. base is the node the stream comes from ("": the one that
// served the page; after a failover, another node's origin).
const live = { started: false, services: new Map(), nodes: new Map(), cluster: null, base: "" };
const params = new URLSearchParams(location.search);
const view = { query: params.get("q") || "", page: Number(params.get("page")) || 0 };
// offset is the node's clock minus this browser's, so that ages count from
// the same clock that stamped the heartbeats.
let offset = Date.parse(document.body.dataset.now) - Date.now() || 0;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

// fmtAge writes a duration as the server does: the two largest units.
function fmtAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

// tick rewrites every counting time from its datetime attribute.
function tick() {
  const now = Date.now() + offset;
  for (const t of document.querySelectorAll("time[datetime]")) {
    const at = Date.parse(t.dateTime);
    if (Number.isNaN(at)) continue;
    if (t.classList.contains("ago")) t.textContent = `${fmtAge(now - at)} ago`;
    else if (t.classList.contains("until")) t.textContent = fmtAge(at - now);
    else if (t.classList.contains("since")) t.textContent = fmtAge(now - at);
  }
}

function timeEl(className, iso) {
  const t = el("time", className);
  if (iso) t.dateTime = iso;
  return t;
}

// newRow builds the cells of a service row, as the page template does.
function newRow(id) {
  const tr = el("tr", "svc");
  tr.dataset.id = id;
  const cells = ["Service", "Status", "Last 24 h", "Last heartbeat", "Timeout", "Details", "Incidents"].map((label) => {
    const td = el("td");
    td.dataset.label = label;
    tr.append(td);
    return td;
  });
  cells[0].className = "id";
  cells[0].textContent = id;
  const link = el("a", "hist-link", "history");
  link.href = `/v1/services/${encodeURIComponent(id)}`;
  cells[6].append(link);
  return adopt(tr);
}

// adopt takes a service row, rendered by the server or by newRow, into
// the script's keeping.
function adopt(tr) {
  const entry = { id: tr.dataset.id, tr, hist: null, sig: "", seq: 0 };
  const link = tr.querySelector("a.hist-link");
  link.setAttribute("role", "button");
  link.setAttribute("aria-expanded", "false");
  rows.set(entry.id, entry);
  return entry;
}

// The timeline's letters, as the server writes them (fsm/uptime.go).
const MARKS = { u: ["tl-u", "up"], d: ["tl-d", "down"], p: ["tl-p", "paused"], "-": ["tl-n", "no data"] };
const HALF_HOUR = 30 * 60 * 1000;

// fillTimeline draws a service's last 24 hours, one mark per half-hour
// ending with the current one, as the server renders it.
function fillTimeline(cell, strip) {
  if (!strip) {
    cell.replaceChildren();
    return;
  }
  const end = Math.floor((Date.now() + offset) / HALF_HOUR) * HALF_HOUR + HALF_HOUR;
  const start = end - strip.length * HALF_HOUR;
  const counts = {};
  const span = el("span", "timeline");
  span.setAttribute("role", "img");
  [...strip].forEach((c, i) => {
    const [cls, word] = MARKS[c] || MARKS["-"];
    const from = new Date(start + i * HALF_HOUR);
    const to = new Date(start + (i + 1) * HALF_HOUR);
    const mark = el("i", cls);
    mark.title = `${from.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}–${to.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${word}`;
    span.append(mark);
    counts[word] = (counts[word] || 0) + 1;
  });
  const parts = ["up", "down", "paused", "no data"].filter((w) => counts[w]).map((w) => `${counts[w]} ${w}`);
  span.setAttribute("aria-label", `last 24 h in half-hours: ${parts.join(", ")}`);
  cell.replaceChildren(span);
}

// fillTags shows a service's tags after its id, each a link to the
// search for it.
function fillTags(cell, id, tags) {
  cell.replaceChildren(id);
  for (const tag of tags || []) {
    const a = el("a", "tag", tag);
    a.href = `/?q=${encodeURIComponent(tag)}`;
    cell.append(" ", a);
  }
}

function fillRow(entry, s) {
  const [idCell, status, timeline, seen, timeout, details] = entry.tr.cells;
  entry.tr.className = `svc s-${s.status}${s.waits_for ? " waits-for" : ""}`;
  fillTags(idCell, s.id, s.tags);
  status.replaceChildren(el("span", "badge", s.status));
  if (timeline.dataset.strip !== (s.timeline || "")) {
    fillTimeline(timeline, s.timeline);
    timeline.dataset.strip = s.timeline || "";
  }
  seen.replaceChildren(s.last_seen ? timeEl("ago", s.last_seen) : el("span", "", "never"));
  timeout.textContent = s.schedule ? `${s.schedule} (${s.tz})` : s.timeout;
  if (s.status === "down" && s.incident && !s.incident.resolved) {
    details.replaceChildren("down for ", timeEl("since", s.incident.opened));
  } else if ((s.status === "up" || s.status === "new") && s.next_deadline) {
    details.replaceChildren("due in ", timeEl("until", s.next_deadline));
  } else if (s.status === "paused" && s.paused_until) {
    details.replaceChildren("maintenance, resumes in ", timeEl("until", s.paused_until));
  } else if (s.status === "paused") {
    details.replaceChildren("not watched");
  } else {
    details.replaceChildren();
  }
  if (s.waits_for) details.append(el("span", "waits", `, waits for ${s.waits_for}`));
  const sig = `${s.status}|${JSON.stringify(s.incident)}`;
  if (entry.hist && !entry.hist.hidden && sig !== entry.sig) loadHistory(entry);
  entry.sig = sig;
}

// groupBody returns the tbody of a status, made and put in rank order if
// the page has none yet.
function groupBody(status) {
  for (const b of table.tBodies) if (b.dataset.status === status) return b;
  const body = el("tbody", `group s-${status}`);
  body.dataset.status = status;
  const th = el("th", "", `${status} `);
  th.colSpan = COLUMNS;
  th.append(el("span", "n"));
  const h = el("tr", "group-h");
  h.append(th);
  body.append(h);
  const after = [...table.tBodies].find(
    (b) => rank(b.dataset.status) > rank(status) ||
      (rank(b.dataset.status) === rank(status) && b.dataset.status > status));
  table.insertBefore(body, after || null);
  return body;
}

// place puts node at cursor in body, moving it only if it is elsewhere, and
// returns the new cursor.
function place(body, node, cursor) {
  if (node === cursor) return cursor.nextSibling;
  body.insertBefore(node, cursor);
  return cursor;
}

// renderRows shows services (one page of them, sorted) in their groups;
// groupCounts says how many services of each status match the search.
function renderRows(services, groupCounts) {
  const cursors = new Map();
  const seen = new Set();
  for (const s of services) {
    seen.add(s.id);
    const entry = rows.get(s.id) || newRow(s.id);
    fillRow(entry, s);
    const body = groupBody(s.status);
    let cursor = cursors.has(body) ? cursors.get(body) : body.rows[0].nextSibling;
    cursor = place(body, entry.tr, cursor);
    if (entry.hist) cursor = place(body, entry.hist, cursor);
    cursors.set(body, cursor);
  }
  for (const [id, entry] of rows) {
    if (seen.has(id)) continue;
    entry.tr.remove();
    if (entry.hist) entry.hist.remove();
    rows.delete(id);
  }
  for (const b of [...table.tBodies]) {
    if (!cursors.has(b)) b.remove();
    else b.querySelector(".group-h .n").textContent = String(groupCounts.get(b.dataset.status) || 0);
  }
}

function countBy(services) {
  const counts = new Map();
  for (const s of services) counts.set(s.status, (counts.get(s.status) || 0) + 1);
  return counts;
}

// matches is the server's search: every word is part of the id, or the
// status, or a tag (ignoring case).
function matches(s, words) {
  const id = s.id.toLowerCase();
  return words.every((w) => id.includes(w) || s.status === w ||
    (s.tags || []).some((t) => t.toLowerCase() === w));
}

const cmpStr = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
// A suppressed service follows the dependency it waits for, shown under it.
const byRank = (a, b) => rank(a.status) - rank(b.status) || cmpStr(a.status, b.status) ||
  cmpStr(a.waits_for || a.id, b.waits_for || b.id) || (a.waits_for ? 1 : 0) - (b.waits_for ? 1 : 0) ||
  cmpStr(a.id, b.id);

// render shows the page of services the search and the pager ask for.
// Only that page is in the document, however many services there are.
function render() {
  if (!live.started) return; // the server's rows stand until the first snapshot
  const all = [...live.services.values()];
  const words = view.query.toLowerCase().split(/\s+/).filter(Boolean);
  const matched = words.length ? all.filter((s) => matches(s, words)) : all;
  matched.sort(byRank);
  const pages = Math.max(1, Math.ceil(matched.length / PAGE_SIZE));
  view.page = Math.min(Math.max(view.page, 0), pages - 1);
  const first = view.page * PAGE_SIZE;
  renderRows(matched.slice(first, first + PAGE_SIZE), countBy(matched));
  renderCounts(countBy(all), all.length);
  let text = matched.length ? `${first + 1}–${Math.min(first + PAGE_SIZE, matched.length)} of ${matched.length}` : "none";
  if (words.length) text += " matching";
  if (matched.length !== all.length) text += ` (${all.length} in all)`;
  document.getElementById("showing").textContent = text;
  setPageLink("prev", view.page > 0 ? view.page - 1 : -1);
  setPageLink("next", view.page < pages - 1 ? view.page + 1 : -1);
}

function setPageLink(which, page) {
  const a = document.getElementById(which);
  a.hidden = page < 0;
  if (page < 0) return;
  const q = new URLSearchParams();
  if (view.query) q.set("q", view.query);
  if (page > 0) q.set("page", String(page));
  a.href = q.size ? `/?${q}` : "/";
  a.dataset.page = String(page);
}

function renderCounts(counts, total) {
  const p = document.getElementById("counts");
  p.replaceChildren();
  for (const status of [...counts.keys()].sort((a, b) => rank(a) - rank(b))) {
    p.append(el("span", `count s-${status}`, `${counts.get(status)} ${status}`), " ");
  }
  table.hidden = total === 0;
  document.getElementById("search").hidden = total === 0;
  document.getElementById("empty").hidden = total !== 0;
  const down = counts.get("down") || 0;
  document.title = down ? `(${down} down) watchdog` : "watchdog";
}

function renderCluster(c) {
  document.getElementById("leader").textContent = c.leader || "none";
  document.getElementById("self").textContent = c.self;
  const ready = document.getElementById("ready");
  ready.className = c.ready ? "ok" : "bad";
  ready.textContent = c.ready ? "ready" : `not ready: ${c.not_ready}`;
  document.getElementById("lag").textContent = c.lag === undefined ? "unknown" : c.lag === 1 ? "1 entry" : `${c.lag} entries`;
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren(...c.nodes.map((n) => {
    const tr = el("tr", n.alive ? "alive" : "dead");
    const id = el("td", "", n.id);
    if (n.id === c.leader) id.append(" ", el("span", "badge leader", "leader"));
    const cells = [id, el("td", "", n.http_addr), el("td", "", n.alive ? "alive" : "unreachable"),
      el("td", "", n.voter ? "voter" : "non-voter")];
    ["Node", "HTTP", "Gossip", "Raft"].forEach((label, i) => { cells[i].dataset.label = label; });
    tr.append(...cells);
    return tr;
  }));
}

function setLive(ok, self) {
  const line = document.getElementById("live");
  line.className = ok ? "live" : "stale";
  line.textContent = ok ? `live from ${self}${live.base ? ", as the node that served this page is unreachable" : ""}`
    : "connection lost, retrying: what you see may be stale";
}

function describeRun(r) {
  let text = `${r.action} (${r.event}): ${r.state}`;
  if (r.attempts > 1) text += ` after ${r.attempts} attempts`;
  if (r.error) text += `: ${r.error}`;
  return el("li", r.state === "failed" ? "failed" : "", text);
}

function describeIncident(inc) {
  const li = el("li");
  const opened = Date.parse(inc.opened);
  let text = `incident ${inc.id}: down at ${new Date(opened).toLocaleString()}`;
  text += inc.resolved ? `, back after ${fmtAge(Date.parse(inc.resolved) - opened)}` : ", still down";
  li.append(el("div", "", text));
  if (inc.actions.length) {
    const ul = el("ul", "actions");
    ul.append(...inc.actions.map(describeRun));
    li.append(ul);
  }
  return li;
}

// loadHistory fills a service's history row from GET /v1/services/{id}.
// Only the latest request's answer is shown.
async function loadHistory(entry) {
  const seq = ++entry.seq;
  const box = entry.hist.querySelector("div.hist");
  try {
    const resp = await fetch(`${live.base}/v1/services/${encodeURIComponent(entry.id)}`, { headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const svc = await resp.json();
    if (seq !== entry.seq) return;
    const incidents = svc.incidents || [];
    if (incidents.length === 0) {
      box.replaceChildren(el("p", "", "No incidents."));
      return;
    }
    const ol = el("ol");
    ol.append(...incidents.map(describeIncident));
    box.replaceChildren(ol);
  } catch (err) {
    if (seq === entry.seq) box.replaceChildren(el("p", "failed", `Could not load the history: ${err.message}`));
  }
}

function toggleHistory(entry, link) {
  if (!entry.hist) {
    entry.hist = el("tr", "hist");
    const td = el("td");
    td.colSpan = COLUMNS;
    td.append(el("div", "hist", "loading…"));
    entry.hist.append(td);
    entry.hist.hidden = true;
    entry.tr.after(entry.hist);
  }
  entry.hist.hidden = !entry.hist.hidden;
  link.setAttribute("aria-expanded", String(!entry.hist.hidden));
  if (!entry.hist.hidden) loadHistory(entry);
}

function showCluster() {
  const nodes = [...live.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  renderCluster({ ...live.cluster, nodes });
  setLive(true, live.cluster.self);
}

function onSnapshot(e) {
  const snap = JSON.parse(e.data);
  offset = Date.parse(snap.now) - Date.now();
  live.started = true;
  live.services = new Map(snap.services.map((s) => [s.id, s]));
  const { nodes, ...self } = snap.cluster;
  live.cluster = self;
  live.nodes = new Map(nodes.map((n) => [n.id, n]));
  render();
  showCluster();
  tick();
}

function onDelta(e) {
  const d = JSON.parse(e.data);
  offset = Date.parse(d.now) - Date.now();
  if (d.cluster) live.cluster = d.cluster;
  for (const n of d.nodes || []) live.nodes.set(n.id, n);
  for (const id of d.nodes_removed || []) live.nodes.delete(id);
  for (const s of d.services || []) live.services.set(s.id, s);
  for (const id of d.removed || []) live.services.delete(id);
  if (d.services || d.removed) render();
  showCluster();
  tick();
}

// FAILOVER_AFTER is how long a lost stream may stay lost (the browser
// retrying the same node every two seconds) before the page follows
// another node of the cluster.
const FAILOVER_AFTER = 4000;
let source = null;
let failTimer = 0;

function connect(base) {
  live.base = base;
  source = new EventSource(`${base}/v1/stream`);
  source.addEventListener("snapshot", onSnapshot);
  source.addEventListener("delta", onDelta);
  source.onerror = () => {
    setLive(false);
    if (failTimer) return;
    failTimer = setTimeout(() => {
      failTimer = 0;
      if (source.readyState !== EventSource.OPEN) failover();
    }, FAILOVER_AFTER);
  };
}

// failover follows the next node after the current one, in id order,
// among those the cluster view named (the node that served the page
// included: it may come back), so every node is tried in turn.
function failover() {
  source.close();
  const current = live.base ? new URL(live.base).host : location.host;
  const addrs = [...live.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => n.http_addr).filter(Boolean);
  if (!addrs.includes(location.host)) addrs.push(location.host);
  const next = addrs[(addrs.indexOf(current) + 1) % addrs.length];
  connect(next === location.host ? "" : `${location.protocol}//${next}`);
}

for (const tr of table.querySelectorAll("tr.svc")) adopt(tr);
table.addEventListener("click", (e) => {
  const tag = e.target.closest("a.tag");
  if (tag && live.started) {
    // A tag filters the list, as typing it in the search box does.
    e.preventDefault();
    document.getElementById("q").value = tag.textContent;
    view.query = tag.textContent;
    view.page = 0;
    remember();
    render();
    return;
  }
  const link = e.target.closest("a.hist-link");
  const entry = link && rows.get(link.closest("tr").dataset.id);
  if (!entry) return;
  e.preventDefault();
  toggleHistory(entry, link);
});
const search = document.getElementById("search");
search.addEventListener("submit", (e) => e.preventDefault());
document.getElementById("q").addEventListener("input", (e) => {
  view.query = e.target.value;
  view.page = 0;
  remember();
  render();
});
document.getElementById("pager").addEventListener("click", (e) => {
  const a = e.target.closest("a[data-page]");
  if (!a || !live.started) return; // before the stream, the server's links work
  e.preventDefault();
  view.page = Number(a.dataset.page);
  remember();
  render();
});

// remember keeps the search and the page in the address, so a reload (or
// the page without script) shows the same.
function remember() {
  const q = new URLSearchParams();
  if (view.query) q.set("q", view.query);
  if (view.page > 0) q.set("page", String(view.page));
  history.replaceState(null, "", q.size ? `/?${q}` : "/");
}

tick();
setInterval(tick, 1000);
connect("");
