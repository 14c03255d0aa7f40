/* The flow editor: line numbers, checking as you type, graph, simulator, versions. */
"use strict";
(() => {
  const {page, el, fmt} = Centralita;
  const data = JSON.parse(document.getElementById("flow-data").textContent);
  const S = data.strings;
  const base = `/admin/flows/${encodeURIComponent(data.flow_id)}`;
  const text = document.getElementById("flow-text");
  const gutter = document.getElementById("gutter");
  const problemsList = document.getElementById("problems");
  const status = document.getElementById("status");
  let badLines = new Set();
  let lastSaved = {text: null, version: data.draft};
  let checkTimer = null, checkSeq = 0, valid = problemsList.querySelector(".ok") !== null;

  const say = (message, kind) => {
    status.textContent = message;
    status.className = "status " + (kind || "");
  };

  function drawGutter() {
    const count = text.value.split("\n").length;
    const lines = [];
    for (let i = 1; i <= count; i++) lines.push(badLines.has(i) ? `<b class="bad">${i}</b>` : String(i));
    gutter.innerHTML = lines.join("\n");
    gutter.scrollTop = text.scrollTop;
  }

  function goToLine(line) {
    const rows = text.value.split("\n");
    let start = 0;
    for (let i = 0; i < Math.min(line - 1, rows.length); i++) start += rows[i].length + 1;
    const end = start + (rows[line - 1] || "").length;
    text.focus();
    text.setSelectionRange(start, end);
    const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 18;
    text.scrollTop = Math.max(0, (line - 5) * lineHeight);
    drawGutter();
  }

  function showProblems(problems) {
    problemsList.replaceChildren();
    badLines = new Set(problems.filter((p) => p.in_draft).map((p) => p.line));
    valid = problems.length === 0;
    if (valid) problemsList.append(el("li", {class: "ok"}, S.valid));
    for (const p of problems) {
      problemsList.append(el("li", {class: "problem"},
        el("button", {type: "button", class: "linkish", "data-line": p.line}, `${p.file}:${p.line}`),
        " " + p.message));
    }
    drawGutter();
  }

  async function check() {
    const mine = ++checkSeq;
    try {
      const result = await page("POST", `${base}/check`, {text: text.value});
      if (mine !== checkSeq) return;  // an older answer arriving late
      showProblems(result.problems);
      if (result.svg) document.getElementById("graph").innerHTML = result.svg;
      document.getElementById("prompts").innerHTML = result.prompts_html;
      if (result.same_version) say(S.unchanged_version, "warn");
    } catch (error) {
      say(`${S.error}: ${error.message}`, "bad");
    }
  }

  text.addEventListener("input", () => {
    drawGutter();
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 350);
  });
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });
  text.addEventListener("keydown", (event) => {  // Tab indents; Esc then Tab leaves
    if (event.key === "Tab" && !event.shiftKey && !text.dataset.escaped) {
      event.preventDefault();
      text.setRangeText("  ", text.selectionStart, text.selectionEnd, "end");
      text.dispatchEvent(new Event("input"));
    }
    if (event.key === "Escape") text.dataset.escaped = "1";
    else if (event.key !== "Tab") delete text.dataset.escaped;
  });
  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-line]");
    if (target && (target.matches("button") || target.closest("#graph"))) {
      goToLine(Number(target.dataset.line));
    }
  });
  document.getElementById("graph").addEventListener("keydown", (event) => {
    const node = event.target.closest("g.node");
    if (node && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      goToLine(Number(node.dataset.line));
    }
  });

  async function saveDraft() {
    clearTimeout(checkTimer);
    await check();
    if (!valid) { say(S.not_publishable, "bad"); return null; }
    if (lastSaved.text === text.value) return lastSaved.version;
    const result = await page("POST", `${base}/versions`, {text: text.value});
    lastSaved = {text: text.value, version: result.version};
    say(result.message, "ok");
    await refreshVersions();
    return result.version;
  }

  async function publish(version) {
    const result = await page("POST", `${base}/versions/${version}/publish`);
    say(result.message, "ok");
    await refreshVersions();
  }

  async function refreshVersions() {
    const {versions} = await page("GET", `${base}/versions`);
    const body = document.querySelector("#versions tbody");
    const published = (versions.find((v) => v.published) || {version: 0}).version;
    body.replaceChildren(...versions.map((v) => el("tr", {"data-version": v.version},
      el("td", {}, v.version), el("td", {}, v.author || "—"),
      el("td", {}, el("time", {datetime: v.created_at}, v.created_at.slice(0, 16).replace("T", " "))),
      el("td", {}, v.published ? el("span", {class: "tag ok"}, S.published) : S.draft),
      el("td", {},
        el("button", {type: "button", class: "load-version", "data-version": v.version}, S.open),
        v.published ? null : el("button", {type: "button", class: "publish-version",
          "data-version": v.version}, v.version < published ? S.rollback : S.publish)))));
  }

  const guard = (fn) => async (...args) => {
    try { await fn(...args); } catch (error) { say(`${S.error}: ${error.message}`, "bad"); }
  };
  document.getElementById("save-draft").addEventListener("click", guard(saveDraft));
  document.getElementById("publish").addEventListener("click", guard(async () => {
    const version = await saveDraft();
    if (version) await publish(version);
  }));
  document.getElementById("versions").addEventListener("click", guard(async (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    const version = Number(button.dataset.version);
    if (button.classList.contains("publish-version")) await publish(version);
    if (button.classList.contains("load-version")) {
      const row = await page("GET", `${base}/versions/${version}`);
      text.value = row.text;
      lastSaved = {text: row.text, version};
      drawGutter();
      await check();
    }
  }));

  /* ---- the call simulator: the whole script is replayed on the draft each time ---- */
  let script = [];
  const simLog = document.getElementById("sim-log");
  async function simulate() {
    try {
      const result = await page("POST", `${base}/simulate`, {
        text: text.value, inputs: script, caller: document.getElementById("sim-caller").value});
      simLog.replaceChildren(...result.turns.map((turn) => el("li", {class: turn.ended ? "ended" : ""},
        el("span", {class: "sim-input"}, turn.input),
        el("span", {class: "sim-node"}, ` → ${S.sim_node} ${turn.node}`),
        el("ul", {}, turn.heard.map((line) => el("li", {class: "heard"}, line))),
        turn.ended ? el("strong", {}, `${S.sim_ended} (${turn.outcome || "—"})`) : null)));
      simLog.lastElementChild?.scrollIntoView({block: "nearest"});
    } catch (error) {
      simLog.replaceChildren(el("li", {class: "bad"}, `${S.error}: ${error.message}`));
    }
  }
  const add = (item) => { script.push(item); simulate(); };
  document.getElementById("sim-restart").addEventListener("click", () => { script = []; simulate(); });
  document.getElementById("sim-press").addEventListener("click", () => {
    const keys = document.getElementById("sim-keys");
    if (keys.value) add({press: keys.value});
    keys.value = "";
    keys.focus();
  });
  document.getElementById("sim-say").addEventListener("click", () => {
    const phrase = document.getElementById("sim-phrase");
    if (phrase.value) add({say: phrase.value});
    phrase.value = "";
    phrase.focus();
  });
  document.getElementById("sim-silence").addEventListener("click", () => add({silence: true}));
  for (const [field, button] of [["sim-keys", "sim-press"], ["sim-phrase", "sim-say"]]) {
    document.getElementById(field).addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); document.getElementById(button).click(); }
    });
  }
  function showStart() {  // the drawing is wider than its box: bring the start into view
    const box = document.getElementById("graph");
    const start = box.querySelector("g.node.start rect");
    if (start) box.scrollLeft = Number(start.getAttribute("x")) - box.clientWidth / 2 + 85;
  }
  new MutationObserver(showStart).observe(document.getElementById("graph"), {childList: true});
  showStart();

  /* ---- the prompts table: changed boxes become a new draft of the YAML ---- */
  document.getElementById("save-prompts").addEventListener("click", guard(async () => {
    const edits = [...document.querySelectorAll("#prompts textarea.prompt-text")]
      .filter((box) => box.value.trim() !== box.dataset.orig.trim())
      .map((box) => ({node: box.dataset.node, key: box.dataset.key, lang: box.dataset.lang,
                      value: box.value}));
    if (!edits.length) return;
    const result = await page("POST", `${base}/prompts`, {text: text.value, edits});
    text.value = result.text;
    lastSaved = {text: result.text, version: result.version};
    drawGutter();
    await check();
    say(result.message, "ok");
    await refreshVersions();
  }));
  drawGutter();
})();
