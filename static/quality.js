// Quality answer sheet: answer the current criterion with its key (y / p / n), move with
// j / k or the arrow keys, e opens the justification, [ and ] go to the previous / next study.
(function () {
  var sheet = document.querySelector("[data-qc-sheet]");
  if (!sheet) { return; }
  var current = 0;
  var advance = false; // set when an answer is given by key: move on once it is saved
  // While an answer is on its way the row is about to be swapped (and the next one selected):
  // keys pressed meanwhile are kept and applied in order once the swap has settled, so fast
  // typing neither hits a row htmx has not taken over yet nor is undone by the settle.
  var saving = false;
  var queuedKeys = [];

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
    if (!handles(event.key)) { return; }
    event.preventDefault();
    // Answers and moves wait for a save in flight; e, [ and ] act at once (what follows them
    // is typing or a new page, which must not be replayed as keys).
    if (saving && queueable(event.key)) { queuedKeys.push(event.key); return; }
    handle(event.key);
  });

  function queueable(key) {
    return ["e", "[", "]"].indexOf(key) < 0;
  }

  function handles(key) {
    var row = rows()[current];
    return ["j", "k", "ArrowDown", "ArrowUp", "e", "[", "]"].indexOf(key) >= 0 ||
      Boolean(row && row.querySelector("[data-qc-key='" + key.toLowerCase() + "']"));
  }

  function handle(key) {
    var row = rows()[current];
    if (key === "j" || key === "ArrowDown") { select(current + 1); return; }
    if (key === "k" || key === "ArrowUp") { select(current - 1); return; }
    if (key === "e") {
      var box = row && row.querySelector("input[name=justification]");
      if (box) { box.focus(); }
      return;
    }
    if (key === "[" || key === "]") {
      var link = document.querySelector(key === "[" ? "[data-qc-nav=previous]" : "[data-qc-nav=next]");
      if (link) { window.location.href = link.href; }
      return;
    }
    answer(key);
  }

  function answer(key) {
    var button = rows()[current].querySelector("[data-qc-key='" + key.toLowerCase() + "']");
    if (!button) { return; }
    advance = true;
    saving = true;
    button.click();
  }

  function settled() {
    saving = false;
    while (queuedKeys.length && !saving) { handle(queuedKeys.shift()); }
  }

  // A justification typed since its last save is not saved until the server says so.
  sheet.addEventListener("input", function (event) {
    var box = event.target.closest("[data-qc-justification]");
    var status = box && document.querySelector(box.dataset.qcSaved);
    if (status) { status.textContent = "Not saved yet…"; }
  });

  // A failed request swaps nothing: accept keys again.
  document.body.addEventListener("htmx:sendError", settled);
  document.body.addEventListener("htmx:responseError", settled);

  // After an answer is saved the row is swapped in: keep it current, or move on when the
  // answer was given by key.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    // The out-of-band summary settles too: react to swaps in the sheet only.
    var row = event.detail.elt;
    if (!row || !row.matches || !sheet.contains(row)) { return; }
    if (!row.matches("[data-qc-row]")) {
      // A part of a row (a stale-write message, a justification's status): stay put.
      advance = false;
      settled();
      return;
    }
    var index = rows().indexOf(row);
    var ok = row.querySelector("[aria-pressed=true]") && !row.querySelector("[role=alert]");
    select(advance && ok ? index + 1 : index);
    advance = false;
    settled();
  });
})();
