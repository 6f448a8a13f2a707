// Events and decisions: the gate's decisions with every reason and what the operator did,
// filtered; a timeline of them; and the other event records of the archive.
"use strict";

(() => {
  const form = document.getElementById("filters");
  const kinds = document.getElementById("kind-filter");

  function operatorText(ops) {
    return ops.map((o) => {
      const who = (o.operators && o.operators.length ? o.operators.join(" and ") : o.operator)
        || "nobody";
      const ran = o.executed ? ` → ran ${o.executed}` : "";
      return `${o.outcome} by ${who}${o.reason ? ": " + o.reason : ""}${ran}`;
    });
  }

  function row(d) {
    const ops = operatorText(d.operator);
    return K.el("tr", { dataset: { index: d.index } },
      K.el("td", { text: d.index }),
      K.el("td", { text: K.when(d.at) }),
      K.el("td", { text: d.camera }),
      K.el("td", { text: `${d.rule} → ${d.action}${d.critical ? " (critical)" : ""}` }),
      K.el("td", {}, K.el("span", { class: "chip o-" + d.outcome, text: d.outcome }),
        d.executed ? ` → ${d.executed}` : ""),
      K.el("td", {}, K.el("ul", {}, d.reasons.map((t) => K.el("li", { text: t })))),
      K.el("td", { class: "operator" }, ops.length ?
        K.el("ul", {}, ops.map((t) => K.el("li", { text: t }))) : "–"),
      K.el("td", {}, K.el("a", { href: `/ui/evidence?index=${d.index}`, text: "evidence" })));
  }

  function dotClass(d) {
    const closed = d.operator.find((o) => ["confirmed", "rejected", "expired"].includes(o.outcome));
    return closed ? "r-" + closed.outcome : "o-" + d.outcome;
  }

  async function decisions() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) q.set(k, String(v).trim());
    q.set("limit", "50");
    const r = await K.api("/ui/api/decisions?" + q.toString());
    if (!r.ok) { K.notice((r.data && r.data.detail) || `decisions: ${r.status}`); return; }
    K.notice("");
    const list = r.data.decisions;
    K.rows(document.querySelector("#decisions tbody"), list, row, "no decision matches");
    document.getElementById("timeline").replaceChildren(K.timeline(list.map((d) => ({
      at: d.at, cls: dotClass(d),
      title: `#${d.index} ${d.camera} ${d.action}: ${d.outcome} ${operatorText(d.operator).join("; ")}`,
    })), "decision timeline"));
  }

  function summary(payload) {
    return Object.entries(payload).map(([k, v]) =>
      `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join("  ");
  }

  async function records() {
    const kind = document.getElementById("f-kind").value;
    const r = await K.api(`/events?kind=${encodeURIComponent(kind)}&limit=30`);
    if (!r.ok) return;
    const list = r.data.events.slice().reverse();
    K.rows(document.querySelector("#records tbody"), list, (e) => K.el("tr", {},
      K.el("td", { text: e.index }), K.el("td", { text: K.when(e.at) }),
      K.el("td", { text: e.kind }), K.el("td", {}, K.el("code", { text: summary(e.payload) }))));
  }

  // filters may come in the address: /ui/events?outcome=OPERATOR&camera=cam1
  for (const [k, v] of new URLSearchParams(location.search)) {
    if (form.elements[k]) form.elements[k].value = v;
  }
  form.addEventListener("submit", (ev) => { ev.preventDefault(); decisions(); });
  kinds.addEventListener("submit", (ev) => { ev.preventDefault(); records(); });
  K.every(5000, decisions);
  records();
})();
