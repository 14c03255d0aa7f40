/* Agent console: state, the offered call's screen-pop, accept/decline, wrap-up.
   Acts through the JSON API with the session's page token; refreshes on each event of
   the queue feed and every few seconds. */
"use strict";
(() => {
  const {api, page, el, seconds, live} = Centralita;
  const data = JSON.parse(document.getElementById("agent-data").textContent);
  const S = data.strings;
  const call = api(data.token);
  const me = encodeURIComponent(data.agent_id);
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const say = (message, kind) => { status.textContent = message; status.className = "status " + (kind || ""); };
  let shown = null;        // call id on screen
  let wrap = JSON.parse(sessionStorage.getItem("wrapup") || "null");  // {call_id, customer_id}
  let summaryVersion = null;

  const act = (action, body) => call("POST", `/api/agents/${me}/${action}`, body || {});
  const guard = (fn) => async (...args) => {
    say("");
    try { await fn(...args); await refresh(); } catch (error) { say(`${S.error}: ${error.message}`, "bad"); }
  };

  async function refresh() {
    let offer;
    try { offer = await page("GET", "/agent/offer.json"); }
    catch (error) { say(`${S.error}: ${error.message}`, "bad"); return; }
    const agent = offer.agent;
    const state = agent ? agent.state : "offline";
    $("state").textContent = S[state] || state;
    $("state").className = "state-badge " + state;
    $("state-since").textContent = agent && agent.in_state_s !== null ? seconds(agent.in_state_s) : "";
    const current = offer.calls[0];
    if (current && (state === "reserved" || state === "busy")) {
      $("idle").hidden = true;
      $("wrapup").hidden = true;
      $("offer").hidden = false;
      $("offer-actions").hidden = state !== "reserved";
      $("busy-actions").hidden = state !== "busy";
      if (shown !== current.call_id) await showOffer(current);
      return;
    }
    shown = null;
    $("offer").hidden = true;
    const wrapping = wrap && (state === "wrap_up" || state === "available" || state === "paused");
    $("wrapup").hidden = !wrapping;
    $("idle").hidden = !!wrapping;
    if (wrapping && summaryVersion === null) await loadSummary();
  }

  async function showOffer(offered) {
    shown = offered.call_id;
    const ivr = offered.ivr || {};
    const customer = await lookup(offered.caller);
    const name = customer ? customer.name : (ivr.customer && ivr.customer.name) || S.unknown_caller;
    const facts = [
      [S.customer, name + (customer && customer.vip ? ` · ${S.vip}` : "")],
      [S.phone, offered.caller || "—"],
      [S.language, ivr.language || "—"],
      [S.queue, offered.queue],
      [S.intent, ivr.topic || "—"],
      [S.waited, seconds(offered.wait_s)],
    ];
    if (customer && customer.account) facts.push([S.account, customer.account]);
    $("offer-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const said = [
      ...(ivr.chosen || []).map((c) => el("li", {}, "✔ " + c)),
      ...(ivr.inputs || []).map((i) => el("li", {}, i.text ? `“${i.text}”` : `⌨ ${i.keys}`,
        el("span", {class: "muted"}, ` (${i.node})`))),
    ];
    $("offer-said").replaceChildren(...(said.length ? said : [el("li", {class: "muted"}, "—")]));
    const box = $("customer-box");
    box.replaceChildren();
    if (customer) {
      const calls = (customer.calls || []).slice(0, 5);
      box.append(el("h3", {}, S.recent_calls), el("ul", {}, calls.length ? calls.map((c) =>
        el("li", {}, `${(c.started_at || "").slice(0, 16).replace("T", " ")} — `,
          (c.summary && c.summary.body && c.summary.body.text) || c.outcome || "—")) : [el("li", {class: "muted"}, "—")]));
      const open = (customer.follow_ups || []).filter((f) => f.state === "open");
      box.append(el("h3", {}, S.follow_ups), el("ul", {}, open.length ? open.map((f) =>
        el("li", {}, f.description, f.due_at ? el("span", {class: "muted"}, ` (${f.due_at.slice(0, 10)})`) : null))
        : [el("li", {class: "muted"}, "—")]));
    }
    wrap = {call_id: offered.call_id, customer_id: customer ? customer.id : null};
  }

  async function lookup(phone) {
    if (!phone) return null;
    try { return await call("GET", `/api/customers?phone=${encodeURIComponent(phone)}`); }
    catch (error) { if (error.status === 404) return null; throw error; }
  }

  async function loadSummary() {
    try {
      const record = await call("GET", `/api/calls/${encodeURIComponent(wrap.call_id)}`);
      const summary = record.summary;
      if (!summary) return;
      summaryVersion = summary.version;
      $("summary-text").value = (summary.body && summary.body.text) || "";
      $("summary-text").disabled = false;
      $("save-summary").disabled = false;
      $("summary-pending").hidden = true;
    } catch (error) {
      if (error.status !== 404) throw error;  // not filed yet: keep waiting
    }
  }

  $("go-available").addEventListener("click", guard(() => act("state", {state: "available"})));
  $("go-paused").addEventListener("click", guard(() => act("state", {state: "paused", reason: $("pause-reason").value})));
  $("go-offline").addEventListener("click", guard(() => act("state", {state: "offline"})));
  $("accept").addEventListener("click", guard(async () => {
    const result = await act("accept", {call_id: shown});
    say(result.bridged ? S.busy : `${S.busy} — ${result.detail || ""}`, result.bridged ? "ok" : "warn");
  }));
  $("decline").addEventListener("click", guard(async () => { await act("decline", {call_id: shown}); wrap = null; }));
  $("complete").addEventListener("click", guard(async () => {
    await act("complete", {call_id: shown});
    summaryVersion = null;
    sessionStorage.setItem("wrapup", JSON.stringify(wrap));
  }));
  $("save-summary").addEventListener("click", guard(async () => {
    await call("PUT", `/api/calls/${encodeURIComponent(wrap.call_id)}/summary`, {version: summaryVersion,
      summary: {text: $("summary-text").value, agent_outcome: $("outcome").value}});
    say(S.saved_ok, "ok");
  }));
  $("open-follow-up").addEventListener("click", guard(async () => {
    const text = $("follow-up-text").value.trim();
    if (!text || !wrap || !wrap.customer_id) return;
    const path = `/api/customers/${wrap.customer_id}/follow-ups`;
    try {
      await call("POST", path, {description: text, call_sid: wrap.call_id});
    } catch (error) {  // the call is filed in SQL shortly after it ends: link it when it is
      if (error.status !== 400 || !error.message.includes("call_sid")) throw error;
      await call("POST", path, {description: text});
    }
    $("follow-up-text").value = "";
    say(S.saved_ok, "ok");
  }));
  $("back-available").addEventListener("click", guard(async () => {
    const agent = (await page("GET", "/agent/offer.json")).agent;
    if (agent && agent.state === "wrap_up") await act("wrap-up-done");
    else await act("state", {state: "available"});
    wrap = null; summaryVersion = null;
    sessionStorage.removeItem("wrapup");
  }));

  live("/api/events/queues?max_seconds=60", data.token, refresh, refresh, 3000,
       (s) => { if (s === "lost") say(S.connection_lost, "warn"); });
})();
