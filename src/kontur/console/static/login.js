// The sign-in page: POST /auth/login, keep the session's CSRF token for this tab, go on.
"use strict";

(() => {
  const CSRF_KEY = "kontur.csrf";
  const form = document.getElementById("login-form");
  const message = document.getElementById("login-message");
  const params = new URLSearchParams(location.search);

  function say(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  // Only a console path of this origin: never "//elsewhere" or "/ui/..\\".
  function nextPath() {
    const next = params.get("next") || "/ui/";
    return /^\/ui\/[A-Za-z0-9_\-/?=&.%]*$/.test(next) && !/\/\/|\.\./.test(next) ? next : "/ui/";
  }

  if (params.get("expired")) say("Your session ended. Sign in again.");
  sessionStorage.removeItem(CSRF_KEY);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("");
    const button = document.getElementById("login-submit");
    button.disabled = true;
    try {
      const r = await fetch("/auth/login", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          name: document.getElementById("login-name").value.trim(),
          password: document.getElementById("login-password").value,
        }),
      });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) {
        say(data.detail || `Sign-in refused (${r.status}).`);
        return;
      }
      sessionStorage.setItem(CSRF_KEY, data.csrf_token);
      location.assign(nextPath());
    } catch (e) {
      say(String(e));
    } finally {
      button.disabled = false;
    }
  });
})();
