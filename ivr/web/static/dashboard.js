/* Supervisors' dashboard: live tiles and tables from /dashboard/live.json (refreshed on
   each queue event and every few seconds), history bars from /api/reports/kpis. */
"use strict";
(() => {
  const {api, page, el, seconds, pct, live} = Centralita;
  const data = JSON.parse(document.getElementById("dash-data").textContent);
  const S = data.strings;
  const call = api(data.token);
  const $ = (id) => document.getElementById(id);
  const say = (message, kind) => { $("status").textContent = message; $("status").className = "status " + (kind || ""); };

  function bars(target, rows, value, label, alt) {
    const max = Math.max(1, ...rows.map(value));
    target.replaceChildren(...(rows.length ? rows.map((row) => el("div", {class: "bar"},
      el("span", {}, label(row)),
      el("span", {"aria-hidden": "true"}, el("span", {class: "fill" + (alt && alt(row) ? " alt" : ""),
        style: `display:block;width:${(100 * value(row)) / max}%`})),
      el("span", {}, String(value(row))))) : [el("p", {class: "muted"}, S.no_data)]));
  }

  async function refresh() {
    let snap;
    try { snap = await page("GET", "/dashboard/live.json"); }
    catch (error) { say(`${S.error || "Error"}: ${error.message}`, "bad"); return; }
    $("t-ivr").textContent = snap.in_ivr;
    $("t-waiting").textContent = snap.totals.waiting;
    $("t-sl").textContent = pct(snap.totals.service_level);
    $("t-abandon").textContent = pct(snap.totals.abandonment_rate);
    $("t-callbacks").textContent = snap.callbacks_pending;
    $("queues").tBodies[0].replaceChildren(...snap.queues.map((q) => el("tr", {"data-queue": q.name},
      el("th", {scope: "row"}, q.name), el("td", {class: "waiting"}, q.waiting),
      el("td", {}, seconds(q.longest_wait_s)), el("td", {}, seconds(q.ewt_s)),
      el("td", {}, `${q.agents_available} / ${q.agents_logged_in}`),
      el("td", {}, pct(q.service_level)), el("td", {}, pct(q.abandonment_rate)))));
    const states = Object.entries(snap.agents_by_state).map(([state, n]) => ({state, n}));
    bars($("agent-states"), states, (r) => r.n, (r) => S[r.state] || r.state);
    $("agents").tBodies[0].replaceChildren(...snap.agents.map((a) => el("tr", {},
      el("th", {scope: "row"}, a.agent_id),
      el("td", {}, (S[a.state] || a.state) + (a.pause_reason ? ` (${a.pause_reason})` : "")),
      el("td", {}, seconds(a.in_state_s)))));
    $("updated").textContent = `${S.updated} ${new Date(snap.at * 1000).toLocaleTimeString()}`;
  }

  async function history() {
    const day = (d) => d.toISOString().slice(0, 10);
    const to = new Date(), from = new Date(Date.now() - 6 * 86400e3);
    try {
      const report = await call("GET", `/api/reports/kpis?from=${day(from)}&to=${day(to)}&by=day&by=queue&by=agent`);
      const group = (g) => report.rows.filter((r) => r.group === g);
      bars($("h-day"), group("day"), (r) => r.calls, (r) => r.key);
      bars($("h-queue"), group("queue"), (r) => r.calls, (r) => `${r.key} · ${pct(r.service_level_pct === null ? null : r.service_level_pct / 100)}`);
      bars($("h-agent"), group("agent"), (r) => r.served || r.calls, (r) => r.key);
      bars($("h-funnel"), report.funnel.slice(0, 15), (r) => r.dropped, (r) => `${r.flow} · ${r.node} (${r.reached})`, () => true);
    } catch (error) {
      $("h-day").replaceChildren(el("p", {class: "muted"}, `${S.no_data} (${error.message})`));
    }
  }

  live("/api/events/queues?max_seconds=60", data.token, refresh, refresh, 5000,
       (s) => { if (s === "lost") say(S.connection_lost, "warn"); else if ($("status").className.includes("warn")) say(""); });
  history();
})();
