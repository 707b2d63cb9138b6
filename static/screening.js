// Screening page keyboard shortcuts. Keys act on elements carrying data-key inside the panel;
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
})();
