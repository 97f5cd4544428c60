// The live portal (Pigsty on Salt): every POLL_MS, for each cluster on the page, Patroni's
// own view (GET /cluster of the first member that answers, proxied by Nginx over HTTPS),
// the failover runner's routing record and recent HA events (JSON files it writes), and
// Alertmanager's firing alerts. Plain JavaScript, no library, nothing fetched from outside
// the portal. Without JavaScript the page still lists the pillar's topology.
"use strict";

const POLL_MS = 2000;

async function getJSON(url) {
  const r = await fetch(url, {cache: "no-store", credentials: "same-origin"});
  if (!r.ok) throw new Error(url + ": HTTP " + r.status);
  return {data: await r.json(), modified: r.headers.get("Last-Modified")};
}

function setText(el, value) {
  if (el) el.textContent = value === undefined || value === null ? "" : String(value);
}

function cell(row, name) {
  return row.querySelector("td." + name);
}

function ago(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 120) return s + " s ago";
  if (s < 7200) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

// Patroni's role names as Pigsty's: the leader (of a standby cluster too) is the primary
function pigstyRole(member) {
  if (!member) return "absent";
  const role = ["leader", "master", "primary", "standby_leader"].includes(member.role) ? "primary" : "replica";
  return member.state === "running" || member.state === "streaming" ? role : role + " (" + member.state + ")";
}

async function patroniView(members) {
  for (const ins of members) {
    try {
      const got = await getJSON("/live/patroni/" + encodeURIComponent(ins));
      return {from: ins, data: got.data};
    } catch (e) {
      // this member did not answer: ask the next one
    }
  }
  return null;
}

function showEvents(section, events) {
  const body = section.querySelector("table.events tbody");
  if (!body) return;
  body.replaceChildren();
  const list = events && Array.isArray(events.data) ? events.data : [];
  for (const e of list) {
    const tr = document.createElement("tr");
    if (!e.ok) tr.className = "bad";
    const changed = [];
    for (const [m, c] of Object.entries(e.haproxy || {})) changed.push("HAProxy " + m + ": " + [].concat(c).join(", "));
    if (Array.isArray(e.vip)) changed.push("VIP: " + e.vip.join(", "));
    for (const a of [].concat(e.handoff || [], e.rejoin || [])) changed.push(a);
    for (const v of [e.time + " (" + ago(e.epoch) + ")", e.trigger, e.primary || "none",
                     changed.join("; ") || "nothing to change", e.comment || (e.ok ? "ok" : "failed"),
                     e.duration + " s"]) {
      const td = document.createElement("td");
      setText(td, v);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  setText(section.querySelector(".events-empty"), list.length ? "" : "no HA event recorded yet");
}

async function refreshCluster(section) {
  const cls = section.dataset.cls;
  const members = section.dataset.members.split(" ");
  const [view, record, events] = await Promise.all([
    patroniView(members),
    getJSON("/live/" + encodeURIComponent(cls) + ".json").catch(() => null),
    getJSON("/live/events/" + encodeURIComponent(cls) + ".json").catch(() => null),
  ]);
  const live = {};
  if (view) for (const m of view.data.members || []) live[m.name] = m;
  for (const row of section.querySelectorAll("tr[data-ins]")) {
    const ins = row.dataset.ins;
    const m = live[ins];
    const role = view ? pigstyRole(m) : "unknown";
    const routed = record && record.data ? record.data[ins] : undefined;
    setText(cell(row, "live-role"), role);
    setText(cell(row, "state"), m ? m.state : "");
    setText(cell(row, "timeline"), m ? m.timeline : "");
    setText(cell(row, "lag"), m && m.lag !== undefined ? m.lag : "");
    setText(cell(row, "routed"), routed || "no record");
    // the pillar names another primary (a failover or switchover since; not an error)
    row.classList.toggle("drift", view !== null && (role === "primary") !== (row.dataset.pillarRole === "primary"));
    // routing disagrees with Patroni about who is primary (until the runner catches up)
    row.classList.toggle("lagging", view !== null && routed !== undefined && (routed === "primary") !== (role === "primary"));
    row.classList.toggle("primary", role === "primary");
  }
  const status = section.querySelector(".live-status");
  setText(status, view
    ? "Patroni (asked " + view.from + ") at " + new Date().toLocaleTimeString() +
      (record ? "; routing record changed " + record.modified : "; no routing record yet")
    : "no member's Patroni answered at " + new Date().toLocaleTimeString());
  if (status) status.classList.toggle("bad", view === null);
  showEvents(section, events);
}

async function refreshAlerts() {
  const body = document.querySelector("#alerts tbody");
  const empty = document.querySelector("#alerts-empty");
  if (!body) return;
  let alerts;
  try {
    alerts = (await getJSON("/live/alerts?active=true&silenced=false&inhibited=false")).data;
  } catch (e) {
    setText(empty, "Alertmanager did not answer: " + e.message);
    return;
  }
  body.replaceChildren();
  for (const a of alerts) {
    const tr = document.createElement("tr");
    tr.className = a.labels.severity === "CRIT" || a.labels.severity === "critical" ? "bad" : "";
    for (const v of [a.labels.alertname, a.labels.severity, a.labels.cls || "", a.labels.ins || a.labels.instance || "",
                     new Date(a.startsAt).toLocaleString(),
                     (a.annotations && (a.annotations.summary || a.annotations.description)) || ""]) {
      const td = document.createElement("td");
      setText(td, v);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  setText(empty, alerts.length ? "" : "no alert is firing");
}

async function refresh() {
  const sections = Array.from(document.querySelectorAll("section.cluster"));
  await Promise.all(sections.map(s => refreshCluster(s).catch(e => {
    setText(s.querySelector(".live-status"), "refresh failed: " + e.message);
  })).concat([refreshAlerts()]));
  document.body.dataset.refreshed = String(Date.now());
}

async function loop() {
  for (;;) {
    await refresh();
    await new Promise(resolve => setTimeout(resolve, POLL_MS));
  }
}

loop();
