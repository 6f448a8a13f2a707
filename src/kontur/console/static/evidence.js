// Evidence: one decision's verification status (its GOPs' verdicts, its inclusion in the
// signed log), its clip and frame from the archive (video:archive), the person crop
// (biometrics:read), and an export bundle (export:create).
"use strict";

(() => {
  const index = new URLSearchParams(location.search).get("index");

  function fact(dl, term, value) {
    dl.append(K.el("dt", { text: term }), K.el("dd", { text: value }));
  }

  function items(id, list, empty) {
    const ul = document.getElementById(id);
    ul.replaceChildren(...(list.length ? list : [empty]).map((t) => K.el("li", { text: t })));
  }

  async function pick() {
    const r = await K.api("/ui/api/decisions?limit=30");
    if (!r.ok) { K.notice((r.data && r.data.detail) || `decisions: ${r.status}`); return; }
    const ul = document.getElementById("pick-list");
    ul.replaceChildren(...r.data.decisions.map((d) => K.el("li", {},
      K.el("a", { href: `/ui/evidence?index=${d.index}`,
        text: `#${d.index} ${K.when(d.at)} ${d.camera} ${d.rule} → ${d.action}: ${d.outcome}` }))));
    if (!r.data.decisions.length) ul.append(K.el("li", { class: "muted", text: "no decision yet" }));
  }

  function verification(e) {
    const dl = document.getElementById("ev-verification");
    const p = e.proof;
    const bad = e.gops.filter((g) => g.verdict !== "AUTHENTIC");
    fact(dl, "Signed log", p.verified ? `record ${p.index} is in the tree of ${p.tree_size} ` +
      "records (inclusion proof checked)" : "not checked");
    fact(dl, "Checkpoint", p.checkpoint ? "covered by a signed checkpoint" :
      "not yet covered by a signed checkpoint");
    fact(dl, "Video", !e.gops.length ? "no GOP verdict found for this decision" : bad.length ?
      `${bad.length} of ${e.gops.length} GOPs not AUTHENTIC: ` +
      bad.map((g) => `GOP ${g.gop} ${g.verdict}`).join(", ") : `all ${e.gops.length} GOPs AUTHENTIC`);
    fact(dl, "Archive root", p.root);
  }

  async function clip() {
    const video = document.getElementById("ev-clip");
    const status = document.getElementById("ev-clip-status");
    const r = await fetch(`/events/${index}/clip`, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { K.toLogin(true); return; }
    if (!r.ok) {
      const d = await r.json().catch(() => ({}));
      status.textContent = `no clip: ${d.detail || r.status}`;
      video.hidden = true;
      return;
    }
    video.src = URL.createObjectURL(await r.blob());
    status.textContent = "the decision's GOPs, from the archive";
  }

  async function exportBundle(d) {
    const status = document.getElementById("export-status");
    const r = await K.api("/exports", { method: "POST",
      body: { camera: d.camera, from: Math.max(0, d.at - 10), to: d.at } });
    if (r.status !== 202) { status.textContent = (r.data && r.data.detail) || `refused (${r.status})`; return; }
    const id = r.data.request_id;
    status.textContent = `requested (${id}); the site builds it…`;
    for (;;) {
      const s = await K.api(`/exports/${id}`);
      if (s.ok && s.data.state === "ready") {
        status.replaceChildren(`ready, sha256 ${s.data.sha256}: `,
          K.el("a", { href: s.data.bundle, download: `kontur-export-${id}.zip`, text: "download" }));
        return;
      }
      if (s.ok && s.data.state === "failed") { status.textContent = `failed: ${s.data.reason}`; return; }
      await new Promise((done) => setTimeout(done, 1000));
    }
  }

  async function show() {
    const r = await K.api(`/ui/api/decisions/${encodeURIComponent(index)}`);
    if (!r.ok) { K.notice((r.data && r.data.detail) || `decision: ${r.status}`); return; }
    const e = r.data;
    const d = e.decision;
    document.getElementById("pick").hidden = true;
    document.getElementById("evidence").hidden = false;
    document.getElementById("ev-title").textContent =
      `#${d.index} ${d.rule} → ${d.action} on ${d.camera}: ${d.outcome} (${K.when(d.at)})`;
    verification(e);
    document.getElementById("ev-strip").replaceChildren(K.strip(e.gops, Math.max(8, e.gops.length)));
    items("ev-gops", e.gops.map((g) => `GOP ${g.gop} (frames ${g.first_frame}–${g.last_frame}): ` +
      `${g.verdict} — ${(g.reasons || []).join("; ")}`), "none found");
    items("ev-reasons", d.reasons, "none");
    items("ev-findings", e.findings.map((f) => `frame ${f.frame_index}: ` +
      `${f.agree ? "agrees" : "disagrees"} — ${f.reasons.join("; ")}`), "no disagreement recorded");
    items("ev-operator", e.operator.map((o) => `${o.outcome} by ${(o.operators && o.operators.length
      ? o.operators.join(" and ") : o.operator) || "nobody"}: ${o.reason || ""}` +
      (o.executed ? ` → ran ${o.executed}` : "")), "no operator record");
    if (document.getElementById("archive-video")) {
      clip();
      K.image(`/events/${d.index}/snapshot`, document.getElementById("ev-frame"));
    }
    if (document.getElementById("biometrics")) K.image(`/events/${d.index}/crop`,
      document.getElementById("ev-crop"));
    const button = document.getElementById("export-button");
    if (button) {
      button.disabled = !K.canChange();
      button.addEventListener("click", () => { button.disabled = true; exportBundle(d); });
    }
  }

  if (index !== null && /^[0-9]{1,16}$/.test(index)) show(); else pick();
})();
