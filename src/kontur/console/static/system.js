// System: degradation transitions (each naming its camera, or the site), placement (risk per
// platform), latency sparklines, blocks and the latest signed checkpoints.
"use strict";

(() => {
  function text(id, v) { document.getElementById(id).textContent = v ?? "–"; }

  function kv(obj) {
    return Object.entries(obj || {}).map(([k, v]) =>
      `${k}: ${typeof v === "number" ? v.toFixed(4) : v}`).join(", ");
  }

  // Whose state moved (ADR 0040): a camera's id, or the site's own state (no camera).
  function scopeOf(t) { return t.camera == null ? "site" : `camera ${t.camera}`; }

  function scopeCell(t) {
    if (t.camera == null) {
      return K.el("td", { class: "muted", dataset: { scope: "site" }, text: "site" });
    }
    return K.el("td", { dataset: { scope: "camera" }, text: t.camera });
  }

  function latencyText(xs) {
    if (!xs.length) return "no decision yet";
    const sorted = xs.slice().sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)];
    return `${xs.length} recent decisions, median ${p50.toFixed(2)} s, ` +
      `max ${sorted[sorted.length - 1].toFixed(2)} s`;
  }

  async function refresh() {
    const r = await K.api("/ui/api/system");
    if (!r.ok) { K.notice((r.data && r.data.detail) || `system: ${r.status}`); return; }
    K.notice("");
    const s = r.data;
    K.stateBadge(s.state, s.stale);
    text("sys-state", s.state);
    text("sys-started", K.when(s.started_at));
    text("sys-records", s.archive.records);
    text("sys-head", s.archive.head);
    const ts = s.transitions.slice().reverse();
    K.rows(document.querySelector("#transitions tbody"), ts, (t) => K.el("tr", {},
      K.el("td", { text: t.index }), K.el("td", { text: K.when(t.at) }), scopeCell(t),
      K.el("td", { text: `${t.from} → ${t.to}` }), K.el("td", { text: t.trigger }),
      K.el("td", { text: t.detail || "" })), "no transition: the run stayed in its first state");
    document.getElementById("state-timeline").replaceChildren(K.timeline(s.transitions.map((t) =>
      ({ at: t.at, cls: t.to === "NORMAL" ? "v-AUTHENTIC" : t.to === "SAFE" ? "v-DENY" : "v-MISSING",
        title: `${scopeOf(t)}: ${t.from} → ${t.to}: ${t.trigger}` })), "degradation transitions"));
    K.rows(document.querySelector("#placement tbody"), s.placement, (p) => K.el("tr", {},
      K.el("td", { text: p.task }), K.el("td", { text: p.platform }),
      K.el("td", {}, K.el("code", { text: kv(p.risk) })),
      K.el("td", {}, K.el("code", { text: kv(p.admissible) })), K.el("td", { text: p.reason })),
      "no placement record");
    document.getElementById("latency").replaceChildren(...s.cameras.map((c) => K.el("div", {},
      K.el("span", { class: "muted", text: `${c.id}: ${latencyText(c.latency_s)}` }),
      K.sparkline(c.latency_s, "latency", `${c.id} latency (s)`))));
    K.rows(document.querySelector("#blocks tbody"), s.blocks, (b) => K.el("tr", {},
      K.el("td", { text: b.name }), K.el("td", { text: b.alive ? "yes" : "NO" }),
      K.el("td", { text: b.restarts })));
    K.rows(document.querySelector("#checkpoints tbody"), s.checkpoints.slice().reverse(), (c) =>
      K.el("tr", {}, K.el("td", { text: c.size }), K.el("td", { text: K.when(c.at) }),
        K.el("td", {}, K.el("code", { text: c.note }))), "no signed checkpoint yet");
  }

  const verify = document.getElementById("verify-button"); // absent unless audit:read
  if (verify) {
    verify.addEventListener("click", () => K.incident("/incidents/verify-archive", undefined,
      document.getElementById("verify-status")));
  }
  const failover = document.getElementById("failover-form"); // absent unless operator:decide
  if (failover) {
    failover.addEventListener("submit", (ev) => {
      ev.preventDefault();
      K.incident("/incidents/failover-cpu",
        { reason: document.getElementById("failover-reason").value.trim() },
        document.getElementById("failover-status"));
    });
  }

  K.every(5000, refresh);
})();
