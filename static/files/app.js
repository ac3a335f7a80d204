// Doorman's only script. Everything works without it; it only enhances:
//  - a destructive GET form marked data-dialog="<id>" (which without script
//    leads to a confirm page) opens the <dialog> of that id instead;
//  - exact times are shown in the reader's own time zone, UTC in the title;
//  - on signed-in pages, a stream of session events (data-events on <body>):
//    when this session is ended elsewhere, the page says so at once (in a
//    live region, without moving focus) and goes to the sign-in page; when
//    the account's sessions change, the Security page refreshes its list in
//    place, keeping focus and leaving an open dialog alone.
"use strict";

function bindDialogs(root) {
  for (const form of root.querySelectorAll("form[data-dialog]")) {
    if (form.dataset.bound) continue;
    form.dataset.bound = "1";
    const dialog = document.getElementById(form.dataset.dialog);
    if (!dialog || typeof dialog.showModal !== "function") continue;
    const opener = form.querySelector("button");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      dialog.showModal();
    });
    if (dialog.dataset.bound) continue;
    dialog.dataset.bound = "1";
    // Give focus back to the button that opened the dialog, however it
    // closed (Cancel, Escape).
    dialog.addEventListener("close", () => {
      const again = document.querySelector(`form[data-dialog="${dialog.id}"] button`) || opener;
      if (again && document.contains(again)) again.focus();
      if (pendingRefresh) refreshSessions();
    });
    // Keep Tab and Shift+Tab inside the open dialog: a modal dialog makes
    // the page behind it inert, but browsers still let focus leave to the
    // document itself.
    dialog.addEventListener("keydown", (event) => {
      if (event.key !== "Tab") return;
      const items = Array.from(dialog.querySelectorAll("button, input, a[href], select, textarea"))
        .filter((e) => !e.disabled && e.offsetParent !== null);
      if (items.length === 0) return;
      const first = items[0], last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    });
    // A click on the backdrop (outside the dialog box) cancels.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close("cancel");
    });
  }
}

// Times: one format everywhere, "7 Dec 2026, 14:05 CET". The server writes
// exact times in UTC ("7 Dec 2026, 13:05 UTC"), the only zone it knows; here
// they are shown in the reader's own zone, and the UTC form moves to the
// title. A relative time ("5 minutes ago") keeps its words and gets both
// exact forms in its title.
const timeParts = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
});
const utcParts = new Intl.DateTimeFormat("en-GB", {
  day: "numeric", month: "short", year: "numeric",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: "UTC",
});

function formatTime(fmt, d, zone) {
  const p = {};
  for (const part of fmt.formatToParts(d)) p[part.type] = part.value;
  return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute} ${zone || p.timeZoneName}`;
}

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    if (t.dataset.local) continue;
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    t.dataset.local = "1";
    const local = formatTime(timeParts, d);
    const utc = formatTime(utcParts, d, "UTC");
    if (t.textContent.trim().endsWith(" UTC")) {
      t.textContent = local;
      t.title = utc;
    } else {
      t.title = local === utc ? utc : `${local} (${utc})`;
    }
  }
}

const sessionsSection = 'section[aria-labelledby="sessions-heading"]';
let pendingRefresh = false;
let refreshing = false;

// refreshSessions re-reads this page and swaps in its list of sessions
// (and the confirm dialogs, whose counts change with it). Focus stays on
// the same control if it still exists, else moves to the list's heading
// only if it was inside the list; an open dialog is never replaced under
// the user: the refresh waits until it closes.
async function refreshSessions() {
  const current = document.querySelector(sessionsSection);
  if (!current) return;
  if (document.querySelector("dialog[open]")) {
    pendingRefresh = true;
    return;
  }
  if (refreshing) {
    pendingRefresh = true;
    return;
  }
  pendingRefresh = false;
  refreshing = true;
  try {
    const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html", "X-Doorman-Refresh": "1" } });
    if (!res.ok || res.redirected) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.querySelector(sessionsSection);
    if (!fresh || document.querySelector("dialog[open]")) {
      pendingRefresh = true;
      return;
    }
    const active = document.activeElement;
    const wasInside = current.contains(active);
    const row = wasInside ? active.closest("[data-session-id]") : null;
    const key = wasInside ? { row: row && row.dataset.sessionId, label: active.getAttribute("aria-label"), text: active.textContent } : null;
    current.replaceWith(fresh);
    for (const d of document.querySelectorAll("dialog[id]")) d.remove();
    for (const d of doc.querySelectorAll("dialog[id]")) document.querySelector("main").append(d);
    bindDialogs(document);
    localTimes(fresh);
    if (key) {
      const scope = key.row ? fresh.querySelector(`[data-session-id="${key.row}"]`) : fresh;
      const same = scope && Array.from(scope.querySelectorAll("a[href], button"))
        .find((e) => (key.label && e.getAttribute("aria-label") === key.label) || (!key.label && e.textContent === key.text));
      const heading = fresh.querySelector("#sessions-heading");
      if (same) same.focus();
      else if (heading) {
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    }
  } catch (e) {
    // A failed refresh changes nothing; the next event or a reload will do.
  } finally {
    refreshing = false;
    if (pendingRefresh && !document.querySelector("dialog[open]")) refreshSessions();
  }
}

function watchSession(url, retryIn = 5000) {
  if (typeof EventSource !== "function") return;
  const notice = document.getElementById("live-notice");
  const signedOut = (text) => {
    if (notice) {
      notice.textContent = text || "You were signed out of this device.";
      notice.hidden = false;
    }
    // Long enough for a screen reader to announce the notice.
    setTimeout(() => location.assign(document.body.dataset.signedOut || "/login"), 1500);
  };
  const events = new EventSource(url);
  events.addEventListener("signed-out", (event) => {
    events.close();
    signedOut(event.data);
  });
  events.addEventListener("sessions", () => refreshSessions());
  // The server subscribes this tab before it answers, so from "open" on a
  // revocation is pushed here (tests wait for the mark before revoking).
  events.addEventListener("open", () => { document.body.dataset.liveStream = "open"; });
  // A stream that broke is retried by the browser. One the server refused
  // is closed for good: most often because the session ended before the
  // stream was subscribed (or while it reconnected), so nothing was pushed.
  // Ask the server whether this tab is still signed in: if not, say so and
  // move to sign-in now rather than at the next click; if it is (a 429: too
  // many tabs of this session or account; a 503: the server holds all the
  // streams it can, or is restarting), watch again later, waiting longer
  // each time.
  events.addEventListener("error", async () => {
    if (events.readyState !== EventSource.CLOSED) return;
    delete document.body.dataset.liveStream;
    try {
      // A background read: it leaves the tab's one-time messages for its
      // next page, the sign-in page's included.
      const res = await fetch(location.pathname, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html", "X-Doorman-Refresh": "1" } });
      const signIn = document.body.dataset.signedOut || "/login";
      if (res.status === 401 || (res.redirected && new URL(res.url).pathname === new URL(signIn, location.href).pathname)) {
        signedOut();
        return;
      }
      // Still signed in (tests wait for the mark).
      document.body.dataset.liveStream = "refused";
    } catch (e) {
      // The server is unreachable: try again later.
    }
    setTimeout(() => watchSession(url, Math.min(retryIn * 2, 300000)), retryIn);
  });
}

// A button marked data-copy="<id>" copies that element's text, and says so
// (in the button, which a screen reader announces as it changes).
function bindCopyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select the token and copy it";
      }
    });
  }
}

// A page opened from an emailed link carries the link's token in its URL:
// once the page holds it in a hidden field, the address bar (and so the
// history, and a copied URL) no longer does.
function stripLinkToken() {
  if (document.querySelector("[data-strip-query]") && location.search) {
    history.replaceState(null, "", location.pathname);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  stripLinkToken();
  bindDialogs(document);
  bindCopyButtons(document);
  localTimes(document);
  if (document.body.dataset.events) watchSession(document.body.dataset.events);
});
