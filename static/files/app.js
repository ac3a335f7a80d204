// Doorman's only script. Everything works without it; it only enhances:
//  - a destructive GET form marked data-dialog="<id>" (which without script
//    leads to a confirm page) opens the <dialog> of that id instead;
//  - exact times in <time title> are shown in the reader's own time zone.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-dialog]")) {
    const dialog = document.getElementById(form.dataset.dialog);
    if (!dialog || typeof dialog.showModal !== "function") continue;
    const opener = form.querySelector("button");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      dialog.showModal();
    });
    // Give focus back to the button that opened the dialog, however it
    // closed (Cancel, Escape).
    dialog.addEventListener("close", () => {
      if (opener && document.contains(opener)) opener.focus();
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

  const fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    if (t.title) t.title = fmt.format(d);
    else if (t.closest(".details")) t.textContent = fmt.format(d);
  }
});
