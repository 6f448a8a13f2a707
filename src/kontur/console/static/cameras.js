// Cameras: the inventory (enrolments and revocations from the archive) and each camera's
// counters. Enrol and revoke stay on the CLI until the API has routes for them.
"use strict";

(() => {
  function alarms(cam) {
    return cam.alarms.length ? K.el("ul", { class: "alarms" },
      cam.alarms.map((a) => K.el("li", { class: a.level, text: a.text }))) : "none";
  }

  async function refresh() {
    const r = await K.api("/ui/api/overview");
    if (!r.ok) { K.notice((r.data && r.data.detail) || `cameras: ${r.status}`); return; }
    K.notice("");
    const o = r.data;
    K.stateBadge(o.state, o.stale);
    const inv = new Map(o.inventory.map((c) => [c.camera, c]));
    K.rows(document.querySelector("#camera-table tbody"), o.cameras, (c) => K.el("tr", {},
      K.el("td", { text: c.id }), K.el("td", { text: c.frames }),
      K.el("td", { text: c.fps_avg === null ? "–" : c.fps_avg.toFixed(1) }),
      K.el("td", {}, K.strip(c.strip, 40), Object.entries(c.gops).map(([k, v]) => `${k} ${v}`)
        .join(", ")),
      K.el("td", {}, alarms(c)),
      K.el("td", { text: inv.has(c.id) ? inv.get(c.id).action : "not enrolled (unsigned source)" }),
      K.el("td", { text: c.error || "" })));
    K.rows(document.querySelector("#inventory tbody"), o.inventory_history, (e) => K.el("tr", {},
      K.el("td", { text: K.when(e.at) }), K.el("td", { text: e.camera }),
      K.el("td", { text: e.action }), K.el("td", { text: e.detail })),
      "no enrolment or revocation in the archive");
  }

  const revoke = document.getElementById("revoke-form"); // absent unless cameras:admin
  if (revoke) {
    revoke.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const camera = document.getElementById("revoke-camera").value.trim();
      const reason = document.getElementById("revoke-reason").value.trim();
      K.incident("/incidents/revoke-camera", { camera, reason },
        document.getElementById("revoke-status"));
    });
  }

  K.every(5000, refresh);
})();
