// Quality answer sheet: answer the current criterion with its key (y / p / n), move with
// j / k or the arrow keys, e opens the justification, [ and ] go to the previous / next study.
(function () {
  var sheet = document.querySelector("[data-qc-sheet]");
  if (!sheet) { return; }
  var current = 0;
  var advance = false; // set when an answer is given by key: move on once it is saved

  function rows() { return Array.prototype.slice.call(sheet.querySelectorAll("[data-qc-row]")); }

  function select(index, focus) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("qc-current", i === current); });
    if (focus !== false) { all[current].focus({ preventScroll: false }); }
  }

  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" ||
      target.tagName === "SELECT" || target.isContentEditable);
  }

  // Start on the first criterion without an answer.
  var firstOpen = rows().findIndex(function (row) {
    return !row.querySelector("[aria-pressed=true]");
  });
  select(firstOpen < 0 ? 0 : firstOpen, false);

  sheet.addEventListener("focusin", function (event) {
    var row = event.target.closest("[data-qc-row]");
    if (row) {
      var index = rows().indexOf(row);
      if (index !== current) { select(index, false); }
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target)) {
      if (event.key === "Escape") { event.target.blur(); select(current); }
      return;
    }
    var key = event.key;
    var row = rows()[current];
    if (key === "j" || key === "ArrowDown") { select(current + 1); event.preventDefault(); return; }
    if (key === "k" || key === "ArrowUp") { select(current - 1); event.preventDefault(); return; }
    if (key === "e" && row) {
      var box = row.querySelector("input[name=justification]");
      if (box) { box.focus(); event.preventDefault(); }
      return;
    }
    if (key === "[" || key === "]") {
      var link = document.querySelector(key === "[" ? "[data-qc-nav=previous]" : "[data-qc-nav=next]");
      if (link) { window.location.href = link.href; }
      return;
    }
    if (row) {
      var button = row.querySelector("[data-qc-key='" + key.toLowerCase() + "']");
      if (button) {
        event.preventDefault();
        advance = true;
        button.click();
      }
    }
  });

  // After an answer is saved the row is swapped in: keep it current, or move on when the
  // answer was given by key.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    // The out-of-band summary settles too: react to the row's own swap only.
    var row = event.detail.elt;
    if (!row || !row.matches || !row.matches("[data-qc-row]") || !sheet.contains(row)) { return; }
    var index = rows().indexOf(row);
    var ok = row.querySelector("[aria-pressed=true]") && !row.querySelector("[role=alert]");
    select(advance && ok ? index + 1 : index);
    advance = false;
  });
})();

// Validation errors (422) carry a message fragment: show it in place instead of the generic
// error box.
document.body.addEventListener("htmx:beforeSwap", function (event) {
  if (event.detail.xhr.status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
