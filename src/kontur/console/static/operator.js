// Operator queue: each pending request with its evidence and a countdown; confirm or reject,
// with a reason. The supervisor alone decides who won; the answer says so.
"use strict";

(() => {
  const live = document.getElementById("live-video"); // absent unless video:live
  const findingsAllowed = Boolean(document.getElementById("findings-allowed"));
  const queue = document.getElementById("queue");
  const empty = document.getElementById("queue-empty");
  let skew = 0; // server wall clock minus ours, from the Date header

  function serverNow() { return Date.now() / 1000 + skew; }

  function list(items) {
    return K.el("ul", {}, items.map((t) => K.el("li", { text: t })));
  }

  async function findings(req, box) {
    const r = await K.api(`/ui/api/decisions/${req.decision_index}`);
    if (!r.ok) { box.replaceChildren(K.el("p", { class: "muted", text: `(${r.status})` })); return; }
    const f = r.data.findings;
    box.replaceChildren(f.length ? list(f.map((x) =>
      `frame ${x.frame_index}: ${x.agree ? "agrees" : "disagrees"} — ${x.reasons.join("; ")}`))
      : K.el("p", { class: "muted", text: "no disagreement recorded near this frame" }));
  }

  async function decide(req, node, confirm) {
    const reason = node.querySelector("textarea").value.trim();
    const out = node.querySelector(".result");
    if (!reason) { out.className = "result err"; out.textContent = "Say why (a reason is required)."; return; }
    node.querySelectorAll(".decide button").forEach((b) => { b.disabled = true; });
    const r = await K.api(`/operator/requests/${req.id}`, { method: "POST",
      body: { confirm, reason } });
    const d = r.data || {};
    if (r.status === 200) {
      out.className = "result ok";
      out.textContent = `Done: ${d.resolution}`;
      node.dataset.done = "1";
    } else if (r.status === 202) {
      out.className = "result ok";
      out.textContent = d.awaiting === "a second operator" ?
        "Confirmed; a second, different operator must confirm too." : "Sent; waiting for the site.";
    } else {
      out.className = "result err";
      out.textContent = d.detail || `refused (${r.status})`;
      node.querySelectorAll(".decide button").forEach((b) => { b.disabled = false; });
    }
  }

  function build(req) {
    const node = K.el("article", { class: "request", id: "req-" + req.id,
      dataset: { request: req.id } });
    const head = K.el("h2", { text: `${req.action} on ${req.camera}` });
    const facts = K.el("dl", { class: "facts" },
      K.el("dt", { text: "Request" }), K.el("dd", { text: req.id }),
      K.el("dt", { text: "Rule" }), K.el("dd", { text: req.rule }),
      K.el("dt", { text: "Track, frame" }), K.el("dd", { text: `${req.track ?? "–"}, ${req.frame_index}` }),
      K.el("dt", { text: "Decided" }), K.el("dd", { text: K.when(req.at) }),
      K.el("dt", { text: "Four eyes" }), K.el("dd", { class: "four-eyes",
        text: req.two_person ? "yes: two different operators must confirm" : "no" }));
    const left = K.el("div", {}, facts, K.el("h3", { text: "Time left" }),
      K.el("div", { class: "countdown", dataset: { deadline: req.deadline } }));
    const right = K.el("div", {});
    if (live) {
      const img = K.el("img", { class: "frame", alt: `Decision frame of ${req.id} with the box` });
      const note = K.el("p", { class: "muted" });
      right.append(img, note);
      K.image(`/operator/requests/${req.id}/snapshot`, img,
        (code) => { note.textContent = `no snapshot (${code})`; });
    }
    const cells = Object.entries(req.gop_verdicts).map(([gop, verdict]) => ({ gop, verdict }));
    right.append(K.el("h3", { text: "GOP verdicts" }), K.strip(cells, Math.max(cells.length, 8)),
      K.el("p", { class: "muted", text: cells.map((c) => `GOP ${c.gop}: ${c.verdict}`).join(", ") }));
    const why = K.el("div", {}, K.el("h3", { text: "Why the gate asks" }), list(req.reasons));
    const finds = K.el("div", { class: "findings" });
    if (findingsAllowed) {
      why.append(K.el("h3", { text: "Verifier findings" }), finds);
      findings(req, finds);
    }
    const form = K.el("div", {},
      K.el("label", { text: "Reason (archived with your name)" }),
      K.el("textarea", { maxlength: 1024, required: true, class: "reason" }),
      K.el("div", { class: "decide" },
        K.el("button", { class: "confirm", type: "button", disabled: !K.canChange(),
          onclick: () => decide(req, node, true), text: "Confirm" }),
        K.el("button", { class: "reject", type: "button", disabled: !K.canChange(),
          onclick: () => decide(req, node, false), text: "Reject" })),
      K.el("p", { class: "result" }));
    node.append(head, K.el("div", { class: "columns" }, left, right), why, form);
    return node;
  }

  function update(req, node) {
    const c = req.confirmations;
    const fe = node.querySelector(".four-eyes");
    if (req.two_person && c.length) fe.textContent = `confirmed by ${c.join(", ")}; one more needed`;
  }

  function tickCountdowns() {
    for (const n of queue.querySelectorAll(".countdown")) {
      const left = Number(n.dataset.deadline) - serverNow();
      n.textContent = left > 0 ? `${Math.floor(left / 60)}:${String(Math.floor(left % 60))
        .padStart(2, "0")}` : "deadline passed: failing safe";
      n.classList.toggle("late", left < 15);
    }
  }

  async function refresh() {
    const r = await K.api("/operator/requests");
    if (r.date) skew = Date.parse(r.date) / 1000 - Date.now() / 1000;
    if (!r.ok) { K.notice((r.data && r.data.detail) || `requests: ${r.status}`); return; }
    K.notice("");
    const ids = new Set(r.data.requests.map((q) => q.id));
    for (const req of r.data.requests) {
      const node = document.getElementById("req-" + req.id) || queue.appendChild(build(req));
      update(req, node);
    }
    for (const node of queue.querySelectorAll(".request")) {
      if (!ids.has(node.dataset.request) && !node.dataset.done) {
        node.querySelectorAll(".decide button").forEach((b) => { b.disabled = true; });
        const out = node.querySelector(".result");
        if (!out.textContent) out.textContent = "No longer pending (answered elsewhere or expired).";
        node.dataset.done = "1";
      }
    }
    empty.hidden = queue.children.length > 0;
    tickCountdowns();
  }

  setInterval(tickCountdowns, 1000);
  K.every(2000, refresh);
})();
