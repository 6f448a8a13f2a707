// Users (users:admin): list, add (a generated password is shown once), disable.
"use strict";

(() => {
  const out = document.getElementById("u-result");

  function say(text) { out.textContent = text; out.hidden = !text; }

  async function disable(name) {
    const r = await K.api(`/users/${encodeURIComponent(name)}/disable`, { method: "POST" });
    say(r.ok ? `${name} disabled: their sessions ended and tokens stopped working.` :
      (r.data && r.data.detail) || `refused (${r.status})`);
    refresh();
  }

  async function refresh() {
    const r = await K.api("/users");
    if (!r.ok) { K.notice((r.data && r.data.detail) || `users: ${r.status}`); return; }
    K.rows(document.querySelector("#users tbody"), r.data.users, (u) => K.el("tr", {},
      K.el("td", { text: u.name }), K.el("td", { text: u.roles.join(", ") }),
      K.el("td", { text: u.disabled ? "disabled" : u.locked ? "locked" : "active" }),
      K.el("td", { text: u.tokens.join(", ") || "–" }),
      K.el("td", {}, u.disabled ? "" : K.el("button", { type: "button", disabled: !K.canChange(),
        onclick: () => disable(u.name), text: "Disable" }))));
  }

  document.getElementById("add-user").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = document.getElementById("u-name").value.trim();
    const roles = [...document.querySelectorAll("#u-roles input:checked")].map((i) => i.value);
    const r = await K.api("/users", { method: "POST", body: { name, roles } });
    say(r.ok ? `Added ${r.data.name}. Password (shown once, hand it over safely): ` +
      r.data.password : (r.data && r.data.detail) || `refused (${r.status})`);
    refresh();
  });

  refresh();
})();
