// kontur console: what every page shares. No framework, no inline script (the CSP forbids it).
//
// - api(): the JSON API with the session cookie; a change carries the session's CSRF token
//   (X-CSRF-Token, kept in sessionStorage since the login answered it); a 401 means the
//   session ended: back to the sign-in page.
// - image(): a picture fetched with the cookie and shown from a blob: URL.
// - el()/svg(): DOM builders that only ever set text (never HTML), so nothing from the API
//   can become markup.
// - strip(), sparkline(), timeline(): the pictures (inline SVG).
"use strict";

const K = (() => {
  const CSRF_KEY = "kontur.csrf";
  const body = document.body;
  const perms = new Set((body.dataset.permissions || "").split(" ").filter(Boolean));
  const DENY = new Set(["NOT_AUTHENTIC", "REPLAYED", "DOWNGRADE", "KEY_CHANGED", "REVOKED"]);

  function may(permission) { return perms.has(permission); }

  function toLogin(expired) {
    const next = location.pathname + location.search;
    const q = new URLSearchParams({ next });
    if (expired) q.set("expired", "1");
    location.assign("/ui/login?" + q.toString());
  }

  async function api(path, opts = {}) {
    const method = opts.method || "GET";
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    if (method !== "GET") {
      const token = sessionStorage.getItem(CSRF_KEY);
      if (token) headers["X-CSRF-Token"] = token;
    }
    const r = await fetch(path, init);
    if (r.status === 401) {
      toLogin(true);
      throw new Error("signed out");
    }
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    return { status: r.status, ok: r.ok, data, date: r.headers.get("date") };
  }

  function canChange() { return Boolean(sessionStorage.getItem(CSRF_KEY)); }

  const blobs = new WeakMap();
  async function image(path, img, missing) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { toLogin(true); return false; }
    if (!r.ok) {
      img.hidden = true;
      if (missing) missing(r.status);
      return false;
    }
    const url = URL.createObjectURL(await r.blob());
    const old = blobs.get(img);
    img.src = url;
    img.hidden = false;
    blobs.set(img, url);
    if (old) URL.revokeObjectURL(old);
    return true;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) if (c) node.append(c);
    return node;
  }

  function verdictClass(v) { return "v-" + String(v).replace(/[^A-Z_]/g, ""); }

  // One cell per GOP, coloured by verdict, newest right; a title names the GOP and verdict.
  function strip(cells, slots) {
    const n = Math.max(slots || 40, cells.length);
    const w = 100 / n;
    const root = svg("svg", { class: "strip", viewBox: "0 0 100 10",
      preserveAspectRatio: "none", role: "img", "aria-label": "GOP verdicts" });
    cells.forEach((c, i) => {
      const x = (n - cells.length + i) * w;
      const rect = svg("rect", { x: x.toFixed(3), y: 0, width: (w * 0.9).toFixed(3),
        height: 10, class: verdictClass(c.verdict), "data-verdict": c.verdict });
      const why = (c.reasons || []).join("; ");
      rect.append(svg("title", { text: `GOP ${c.gop}: ${c.verdict}${why ? " — " + why : ""}` }));
      root.append(rect);
    });
    return root;
  }

  function sparkline(values, cls, label) {
    const root = svg("svg", { class: "spark " + (cls || ""), viewBox: "0 0 100 30",
      preserveAspectRatio: "none", role: "img", "aria-label": label || "sparkline" });
    const xs = values.filter((v) => Number.isFinite(v));
    if (xs.length < 2) return root;
    const max = Math.max(...xs) || 1;
    const pts = xs.map((v, i) => `${(i * 100 / (xs.length - 1)).toFixed(2)},` +
      `${(28 - (v / max) * 26).toFixed(2)}`);
    root.append(svg("polyline", { points: pts.join(" "), "vector-effect": "non-scaling-stroke" }));
    root.append(svg("title", { text: `${label || ""} max ${max.toFixed(3)}` }));
    return root;
  }

  // Dots on a time axis: items [{at, cls, title}], oldest left.
  function timeline(items, label) {
    const root = svg("svg", { class: "timeline", viewBox: "0 0 1000 56",
      preserveAspectRatio: "none", role: "img", "aria-label": label || "timeline" });
    root.append(svg("line", { class: "axis", x1: 10, y1: 28, x2: 990, y2: 28 }));
    if (!items.length) return root;
    const t0 = Math.min(...items.map((i) => i.at));
    const t1 = Math.max(...items.map((i) => i.at));
    const span = t1 - t0 || 1;
    for (const it of items) {
      const x = 10 + ((it.at - t0) / span) * 980;
      const dot = svg("circle", { cx: x.toFixed(1), cy: 28, r: 6, class: it.cls });
      dot.append(svg("title", { text: it.title }));
      root.append(dot);
    }
    root.append(svg("text", { x: 10, y: 52, text: when(t0) }));
    root.append(svg("text", { x: 990, y: 52, "text-anchor": "end", text: when(t1) }));
    return root;
  }

  function when(unix) {
    if (unix === null || unix === undefined) return "";
    const d = new Date(unix * 1000);
    return d.toLocaleString(undefined, { hour12: false });
  }

  function notice(text) {
    const n = document.getElementById("notice");
    if (!n) return;
    n.textContent = text || "";
    n.hidden = !text;
  }

  // Run fn now and every ms while the page is visible; errors become the notice line.
  function every(ms, fn) {
    let timer = null;
    async function tick() {
      clearTimeout(timer);
      if (!document.hidden) {
        try { await fn(); } catch (e) { if (e.message !== "signed out") notice(String(e)); }
      }
      timer = setTimeout(tick, ms);
    }
    document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
    tick();
  }

  // A degradation state as a badge: its name as text (never colour alone), "(stale)" when the
  // run state is old, and the class that colours it (s-NORMAL, s-DEGRADED, s-SAFE); the
  // node's other classes stay.
  function paintState(b, state, stale) {
    const known = state !== null && state !== undefined && state !== "";
    const name = known ? String(state) : "unknown";
    b.textContent = stale ? `${name} (stale)` : name;
    b.classList.remove(...[...b.classList].filter((c) => c.startsWith("s-") || c === "stale"));
    b.classList.add("badge", `s-${name.replace(/[^A-Z_]/g, "") || "unknown"}`);
    b.classList.toggle("stale", Boolean(stale));
    b.dataset.state = known ? name : "";
  }

  function stateBadge(state, stale) {
    const b = document.getElementById("state-badge");
    if (b) paintState(b, state, stale);
  }

  function rows(tbody, list, make, empty) {
    tbody.replaceChildren(...list.map(make));
    if (!list.length) {
      const cols = tbody.parentElement.querySelectorAll("thead th").length || 1;
      tbody.append(el("tr", {}, el("td", { colspan: cols, class: "muted", text: empty || "none" })));
    }
  }

  async function logout() {
    try { await api("/auth/logout", { method: "POST" }); } catch (_) { /* leave anyway */ }
    sessionStorage.removeItem(CSRF_KEY);
    location.assign("/ui/login");
  }

  // An incident playbook through the running site: POST, then follow GET /incidents/{id}
  // until the site says how it ended (or stop following after a few minutes).
  async function incident(path, body, out) {
    out.textContent = "asking the site…";
    const r = await api(path, { method: "POST", body });
    if (r.status !== 202) { out.textContent = (r.data && r.data.detail) || `refused (${r.status})`; return; }
    let s = r.data;
    for (let i = 0; i < 300 && ["pending", "sent"].includes(s.state); i++) {
      out.textContent = `${s.state} (${s.request_id})…`;
      await new Promise((done) => setTimeout(done, 1000));
      const g = await api(`/incidents/${s.request_id}`);
      if (g.ok) s = g.data;
    }
    out.textContent = `${s.state}${s.detail ? ": " + s.detail : ""} (${s.request_id})`;
  }

  // The state badge in the bar, on every page (pages that read the state set it too).
  async function badge() {
    const r = await api("/status");
    if (r.ok) stateBadge(r.data.state, r.data.stale);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("state-badge")) every(10000, badge);
    const out = document.getElementById("logout");
    if (out) out.addEventListener("click", logout);
    const acts = ["operator:decide", "export:create", "users:admin"].some(may);
    if (acts && !canChange()) {
      notice("This tab holds no CSRF token for your session: you can look, but sign in " +
        "again in this tab to act.");
    }
  });

  return { CSRF_KEY, DENY, may, api, canChange, image, el, svg, strip, sparkline, timeline,
    when, notice, every, paintState, stateBadge, rows, verdictClass, toLogin, incident };
})();
