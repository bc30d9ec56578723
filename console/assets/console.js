// Cairn console — Cairn's own script (no third-party code, no build step).
"use strict";

function $(sel, root) { return (root || document).querySelector(sel); }

// Sign out from any page, then show the sign-in form for the same address.
document.addEventListener("click", async (e) => {
  const out = e.target.closest("[data-signout]");
  if (!out) return;
  await fetch("/api/auth/sign-out", { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: "{}" });
  location.reload();
});

// Sign-in and sign-up form (Better Auth endpoints), then reload the same view.
function initSignIn() {
  const box = $("[data-signin]");
  if (!box) return;
  const form = $("#auth-form", box), err = $("#auth-error", box), submit = $("#auth-submit", box);
  const setMode = (mode) => {
    box.dataset.mode = mode;
    submit.textContent = mode === "up" ? "Create account" : "Sign in";
    form.password.autocomplete = mode === "up" ? "new-password" : "current-password";
  };
  box.querySelectorAll("[data-mode-switch]").forEach((b) =>
    b.addEventListener("click", () => { setMode(b.dataset.modeSwitch); form.email.focus(); }));
  setMode(box.dataset.mode);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.hidden = true;
    const up = box.dataset.mode === "up";
    const body = { email: form.email.value.trim(), password: form.password.value };
    if (up) body.name = form.name.value.trim() || body.email.split("@")[0];
    submit.disabled = true;
    try {
      const res = await fetch(up ? "/api/auth/sign-up/email" : "/api/auth/sign-in/email", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (res.ok) { location.reload(); return; }
      let msg = "Sign-in failed (" + res.status + ").";
      try { const j = await res.json(); if (j && j.message) msg = j.message; } catch (_) {}
      err.textContent = msg;
      err.hidden = false;
    } catch (x) {
      err.textContent = "Cannot reach the server.";
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  (form.email.value ? form.password : form.email).focus();
  box.dataset.ready = "1"; // the form is handled by this script from now on
}

// Share bars (CSP forbids inline styles).
function initBars() {
  document.querySelectorAll(".bar[data-pct]").forEach((b) => { b.style.width = b.dataset.pct + "%"; });
}

function fmtTime(iso) { return iso ? iso.replace("T", " ").replace("Z", "") : ""; }

function td(text, cls) {
  const c = document.createElement("td");
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}

// Live tail over server-sent events.
function initLive() {
  const form = $("[data-live]");
  if (!form) return;
  const rows = $("#live-rows"), status = $("#live-status"), skippedBox = $("#live-skipped");
  const empty = $("#live-empty"), pauseBtn = $("#live-pause");
  let es = null, paused = false, held = [], received = 0, skipped = 0;
  const maxRows = () => parseInt(form.max.value, 10) || 200;
  const show = (ev) => {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    tr.appendChild(td(fmtTime(ev.receivedAt), "mono"));
    tr.appendChild(td(ev.type));
    const user = document.createElement("td");
    const a = document.createElement("a");
    a.href = "/console/users/" + encodeURIComponent(ev.userId);
    a.textContent = ev.userId;
    user.appendChild(a);
    tr.appendChild(user);
    tr.appendChild(td(ev.sessionId, "mono"));
    const p = JSON.stringify(ev.payload);
    const pc = td(p, "payload");
    pc.title = p;
    tr.appendChild(pc);
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > maxRows()) rows.removeChild(rows.lastChild);
    empty.hidden = true;
  };
  const report = () => {
    status.textContent = (paused ? "Paused · " + held.length + " held · " : "Live · ") +
      received.toLocaleString() + " received · showing " + rows.children.length + " (at most " + maxRows() + ")";
  };
  const connect = () => {
    if (es) es.close();
    const q = new URLSearchParams();
    for (const n of ["type", "userId", "sourceId"]) if (form[n].value.trim()) q.set(n, form[n].value.trim());
    history.replaceState(null, "", "/console/live" + (q.toString() ? "?" + q : ""));
    es = new EventSource("/api/live" + (q.toString() ? "?" + q : ""));
    es.onopen = () => { report(); };
    es.onerror = () => { status.textContent = "Disconnected; reconnecting…"; };
    es.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      received++;
      if (paused) { held.push(ev); if (held.length > maxRows()) { held.shift(); skipped++; showSkipped(); } }
      else show(ev);
      report();
    };
    es.addEventListener("skipped", (m) => {
      skipped += JSON.parse(m.data).skipped;
      showSkipped();
    });
  };
  const showSkipped = () => {
    skippedBox.hidden = false;
    skippedBox.textContent = "Skipped " + skipped.toLocaleString() + " events: they arrived faster than this page could take them.";
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.setAttribute("aria-pressed", String(paused));
    pauseBtn.textContent = paused ? "Resume" : "Pause";
    if (!paused) { held.forEach(show); held = []; }
    report();
  });
  form.max.addEventListener("change", () => {
    while (rows.children.length > maxRows()) rows.removeChild(rows.lastChild);
    report();
  });
  connect();
}

// Endless scroll of a journey: fetch the next page's session groups,
// merging a session that continues across the page boundary.
function initJourney() {
  const box = $("[data-journey]");
  if (!box) return;
  let loading = false;
  const load = async () => {
    const more = $(".more[data-next]", box);
    if (!more || loading) return;
    loading = true;
    more.querySelector("button").disabled = true;
    try {
      const res = await fetch(more.dataset.next, { credentials: "same-origin" });
      if (!res.ok) throw new Error("status " + res.status);
      const tpl = document.createElement("template");
      tpl.innerHTML = await res.text();
      more.remove();
      const sessions = box.querySelectorAll("section.session");
      const last = sessions[sessions.length - 1];
      const first = tpl.content.querySelector("section.session");
      if (last && first && first.dataset.session === last.dataset.session) {
        const ol = last.querySelector("ol.events");
        first.querySelectorAll("ol.events > li").forEach((li) => ol.appendChild(li));
        const span = first.querySelector("h2 .muted"), lastSpan = last.querySelector("h2 .muted");
        if (span && lastSpan) lastSpan.textContent = span.textContent.split(" – ")[0] + " – " + lastSpan.textContent.split(" – ")[1];
        first.remove();
      }
      box.appendChild(tpl.content);
    } catch (x) {
      const b = more.querySelector("button");
      b.disabled = false;
      b.textContent = "Could not load (" + x.message + "); retry";
    } finally {
      loading = false;
      observe();
    }
  };
  const io = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  }, { rootMargin: "400px" }) : null;
  const observe = () => {
    const more = $(".more[data-next]", box);
    if (more && io) { io.disconnect(); io.observe(more); }
  };
  box.addEventListener("click", (e) => { if (e.target.closest("[data-load-more]")) load(); });
  observe();
}

// Copy buttons (write keys, snippets) and confirmation of destructive forms.
document.addEventListener("click", async (e) => {
  const b = e.target.closest("[data-copy], [data-copy-next]");
  if (!b) return;
  const text = b.dataset.copy !== undefined ? b.dataset.copy : b.parentElement.nextElementSibling.textContent;
  try { await navigator.clipboard.writeText(text); b.textContent = "Copied"; }
  catch (_) { b.textContent = "Select and copy"; }
  setTimeout(() => { b.textContent = "Copy"; }, 1500);
});
document.addEventListener("submit", (e) => {
  const msg = e.target.dataset && e.target.dataset.confirm;
  if (msg && !confirm(msg)) e.preventDefault();
});

document.addEventListener("DOMContentLoaded", () => {
  initSignIn();
  initBars();
  initLive();
  initJourney();
});
