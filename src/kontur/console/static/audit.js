// Audit log: who did what, and every refusal, from the archive (audit:read).
"use strict";

(() => {
  const form = document.getElementById("filters");

  async function refresh() {
    const q = new URLSearchParams({ limit: "200" });
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    const r = await K.api("/audit?" + q.toString());
    if (!r.ok) { K.notice((r.data && r.data.detail) || `audit: ${r.status}`); return; }
    K.notice("");
    const list = r.data.audit.slice().reverse();
    K.rows(document.querySelector("#audit tbody"), list, (a) => {
      const p = a.payload;
      return K.el("tr", { class: p.outcome === "refused" ? "refused" : "" },
        K.el("td", { text: a.index }), K.el("td", { text: K.when(p.at) }),
        K.el("td", { text: p.actor }), K.el("td", { text: p.action }),
        K.el("td", {}, K.el("span", { class: p.outcome === "ok" ? "chip v-AUTHENTIC" :
          "chip v-DENY", text: p.outcome })),
        K.el("td", { text: p.target || "" }), K.el("td", { text: p.detail || "" }),
        K.el("td", { text: p.remote || "" }));
    }, "no audit record matches");
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); refresh(); });
  K.every(5000, refresh);
})();
