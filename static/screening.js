// Screening and conflicts pages' keyboard shortcuts. Keys act on elements carrying data-key inside the panel;
// nothing fires while the reviewer types in a field, so notes can contain any letter.
(function () {
  "use strict";

  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return target.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(target.type));
  }

  function panel() {
    return document.getElementById("screen-panel");
  }

  document.addEventListener("keydown", function (event) {
    var box = panel();
    if (!box) return;
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (box.classList.contains("htmx-request") || box.querySelector(".htmx-request")) return;
    var key = event.key.toLowerCase();
    if (key === "/") {
      var note = box.querySelector("#decision-note");
      if (note) {
        event.preventDefault();
        note.focus();
      }
      return;
    }
    if (key === "?") {
      var help = document.getElementById("screen-help");
      if (help && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(help).toggle();
      return;
    }
    var target = box.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    if (target.type === "checkbox") {
      target.checked = !target.checked;
    } else {
      target.click();
    }
  });

  // Refused input (422) is swapped in with its message by the responseHandling in base.html's
  // htmx-config, the one place that says which answers are shown.

  // After a swap, keep focus off stale elements so the next key goes to the new study.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "screen-panel") {
      var active = document.activeElement;
      if (active && active !== document.body && !document.body.contains(active)) {
        document.body.focus();
      }
    }
  });

  // ----- Conflicts page (documented there): keys act on the active conflict, the card holding
  // the focus, else the first one. Nothing fires while the adjudicator types.

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("#conflict-list .conflict-card"));
  }

  function activeCard() {
    var all = cards();
    var focused = document.activeElement && document.activeElement.closest(".conflict-card");
    return all.indexOf(focused) >= 0 ? focused : all[0] || null;
  }

  function activate(card) {
    if (!card) return;
    cards().forEach(function (c) { c.classList.toggle("conflict-active", c === card); });
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  // A note is owed only when the chosen outcome is no reviewer's verdict.
  function syncNote(form) {
    var card = form.closest(".conflict-card");
    var chosen = form.querySelector('input[name="verdict"]:checked');
    var note = form.querySelector('input[name="note"]');
    if (!card || !note) return;
    var verdicts = Array.prototype.map.call(
      card.querySelectorAll("tr[data-verdict]"), function (row) { return row.dataset.verdict; });
    note.required = Boolean(chosen) && verdicts.indexOf(chosen.value) < 0;
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest(".conflict-form");
    if (form && event.target.name === "verdict") syncNote(form);
  });

  document.addEventListener("focusin", function (event) {
    var card = event.target.closest && event.target.closest(".conflict-card");
    if (card) cards().forEach(function (c) { c.classList.toggle("conflict-active", c === card); });
  });

  document.addEventListener("keydown", function (event) {
    var card = activeCard();
    if (!card) return;
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      card.focus({ preventScroll: true });
      return;
    }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    var list = document.getElementById("conflict-list");
    if (list && list.querySelector(".htmx-request")) return;
    var key = event.key.toLowerCase();
    var form = card.querySelector(".conflict-form");
    if (key === "?") {
      var help = document.getElementById("conflict-help");
      if (help && window.bootstrap) window.bootstrap.Collapse.getOrCreateInstance(help).toggle();
      return;
    }
    if (key === "j" || key === "k") {
      var all = cards();
      var next = all[all.indexOf(card) + (key === "j" ? 1 : -1)];
      if (next) {
        event.preventDefault();
        activate(next);
      }
      return;
    }
    if (!form) return;
    if (key === "/") {
      event.preventDefault();
      form.querySelector('input[name="note"]').focus();
      return;
    }
    if (key === "enter") {
      var tag = event.target.tagName;
      if (tag === "BUTTON" || tag === "A") return;
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    var target = form.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (!target || target.disabled) return;
    event.preventDefault();
    if (target.type === "checkbox") {
      target.checked = !target.checked;
    } else {
      target.checked = true;
      syncNote(form);
    }
  });

  // After a resolution the list is swapped: the next conflict becomes the active one.
  document.addEventListener("htmx:afterSettle", function () {
    var all = cards();
    if (!all.length || all.some(function (c) { return c.classList.contains("conflict-active"); })) return;
    var active = document.activeElement;
    if (!active || active === document.body || !document.body.contains(active)) {
      activate(all[0]);
    } else {
      all[0].classList.add("conflict-active");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var first = cards()[0];
    if (first) first.classList.add("conflict-active");
  });
})();
