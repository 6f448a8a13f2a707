// Overview: one card per camera (its degradation state, live snapshot for video:live, the GOP
// verdict strip, fps and frames lost, alarms, sparklines), and the system's state and placement.
"use strict";

(() => {
  const live = document.getElementById("live-video"); // absent unless video:live
  const refreshMs = live ? Number(live.dataset.refreshS || 5) * 1000 : 0;
  const cards = document.getElementById("cameras");
  const seen = new Map(); // camera id -> {at, frames, fps: []}
  // ADR 0040: a camera's effective state, under which the gate decides its requests.
  const STATE_TITLE = "Degradation state of this camera: the more severe of the site's and " +
    "its own (ADR 0040)";

  function text(id, value) {
    const n = document.getElementById(id);
    if (n) n.textContent = value === null || value === undefined ? "–" : String(value);
  }

  // fps over the last few samples: frames advance a whole GOP at a time, so one poll's
  // difference would jump between 0 and a burst.
  function fpsOf(cam, at) {
    const s = seen.get(cam.id) || { fps: [], samples: [] };
    const last = s.samples[s.samples.length - 1];
    if (!last || at > last.at) {
      s.samples.push({ at, frames: cam.frames });
      if (s.samples.length > 6) s.samples.shift();
      const first = s.samples[0];
      if (s.samples.length > 1 && cam.frames >= first.frames) {
        s.fps.push((cam.frames - first.frames) / (at - first.at));
        if (s.fps.length > 60) s.fps.shift();
      }
    }
    seen.set(cam.id, s);
    return s;
  }

  function card(cam) {
    let node = document.getElementById("cam-" + cam.id);
    if (node) return node;
    node = K.el("article", { class: "card", id: "cam-" + cam.id, dataset: { camera: cam.id } },
      K.el("header", { class: "card-head" }, K.el("h2", { text: cam.id }),
        K.el("span", { class: "badge cam-state", title: STATE_TITLE })));
    if (live) {
      const img = K.el("img", { class: "snapshot", alt: `Live snapshot of ${cam.id}` });
      const note = K.el("p", { class: "muted snapshot-note", hidden: true });
      node.append(img, note);
      const load = () => K.image(`/cameras/${encodeURIComponent(cam.id)}/snapshot`, img,
        (code) => { note.hidden = false; note.textContent = `no snapshot yet (${code})`; })
        .then((ok) => { if (ok) note.hidden = true; });
      load();
      setInterval(() => { if (!document.hidden) load(); }, refreshMs);
    }
    node.append(K.el("div", { class: "strip-box" }), K.el("div", { class: "stats" }),
      K.el("ul", { class: "alarms" }), K.el("div", { class: "sparks-box" }));
    cards.append(node);
    return node;
  }

  function stat(label, value) {
    return K.el("div", {}, K.el("span", { class: "label", text: label }),
      K.el("span", { class: "value", text: value }));
  }

  function fill(cam, at, stale) {
    const node = card(cam);
    K.paintState(node.querySelector(".cam-state"), cam.state, stale);
    node.dataset.state = cam.state ?? "";
    const s = fpsOf(cam, at);
    const fps = s.fps.length ? s.fps[s.fps.length - 1] : cam.fps_avg;
    node.querySelector(".strip-box").replaceChildren(K.strip(cam.strip, 40));
    node.querySelector(".stats").replaceChildren(
      stat("fps", fps === null ? "–" : fps.toFixed(1)),
      stat("frames", cam.frames),
      stat("GOPs with frames lost", cam.missing_gops),
      stat("skipped for analysis", cam.frames_skipped),
      stat("verifier agree / disagree", `${cam.verifier.agree} / ${cam.verifier.disagree}`),
      stat("decisions", Object.entries(cam.decisions).map(([k, v]) => `${k} ${v}`).join(", ")
        || "none"));
    node.querySelector(".alarms").replaceChildren(
      ...cam.alarms.map((a) => K.el("li", { class: a.level, text: a.text })));
    node.classList.toggle("alarm", cam.alarms.some((a) => a.level === "bad"));
    node.querySelector(".sparks-box").replaceChildren(
      K.el("span", { class: "label muted", text: "fps" }), K.sparkline(s.fps, "fps", "fps"),
      K.el("span", { class: "label muted", text: "frame-to-decision latency (s)" }),
      K.sparkline(cam.latency_s, "latency", "latency"));
  }

  async function refresh() {
    const r = await K.api("/ui/api/overview");
    if (!r.ok) {
      K.notice(r.data && r.data.detail ? r.data.detail : `overview: ${r.status}`);
      return;
    }
    K.notice("");
    const o = r.data;
    K.stateBadge(o.state, o.stale);
    text("sys-state", o.stale ? `${o.state} (stale)` : o.state);
    text("sys-transitions", o.transitions);
    text("sys-placement", o.placement ? o.placement.platform : "–");
    text("sys-release", o.release || "none");
    text("sys-runtime", o.runtime || "none");
    text("sys-pending", o.pending);
    for (const cam of o.cameras) fill(cam, o.at, o.stale);
  }

  K.every(2000, refresh);
})();
