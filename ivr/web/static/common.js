/* Shared helpers for Centralita's pages: CSRF-protected page calls, API calls with the
   session's page token, and a server-sent-events reader that can send that token
   (EventSource cannot set headers). No framework, no build step. */
"use strict";
const Centralita = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  async function page(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || data.error || response.statusText);
    return data;
  }

  function api(token) {
    return async function call(method, url, body) {
      const response = await fetch(url, {
        method, credentials: "omit",
        headers: {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const error = new Error(data.detail || data.error || response.statusText);
        error.status = response.status;
        throw error;
      }
      return data;
    };
  }

  /* Read an SSE stream with fetch; calls onEvent(name, data) per event; resolves at end. */
  async function stream(url, token, onEvent, signal) {
    const response = await fetch(url, {headers: {"Authorization": "Bearer " + token}, signal});
    if (!response.ok || !response.body) throw new Error("stream " + response.status);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) onEvent(name, data);
      }
    }
  }

  /* Keep a live stream open, reconnecting with a pause; poll() as the fallback tick. */
  function live(url, token, onChange, poll, everyMs, status) {
    poll();
    setInterval(poll, everyMs);
    const loop = async () => {
      for (;;) {
        try {
          if (status) status("");
          await stream(url, token, () => onChange());
        } catch (error) {
          if (status) status("lost");
          await new Promise((r) => setTimeout(r, 3000));
        }
      }
    };
    loop();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");
  const seconds = (s) => s === null || s === undefined ? "—"
    : s >= 60 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.round(s)} s`;
  const pct = (x) => x === null || x === undefined ? "—" : `${Math.round(x * 1000) / 10} %`;

  /* Forms on these pages are driven by buttons: Enter must not reload the page. */
  document.addEventListener("submit", (event) => {
    if (event.target.matches("form[data-js]")) event.preventDefault();
  });

  return {page, api, stream, live, el, fmt, seconds, pct};
})();
