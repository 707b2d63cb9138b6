// Extraction drafts: each field is its own form that htmx posts as you type (its value and the
// version it last saw, nothing else). "Saved" only ever comes from the server's answer: a field
// edited since its last answer says so until the next answer arrives. Fields whose last edit
// has not reached the server are sent when the page is left, so nothing typed is lost.
(function () {
  var sheet = document.querySelector("[data-extraction-sheet]");
  if (!sheet) { return; }
  // Per form: how many edits were made, and how many the last answered request carried.
  var edits = new Map();
  var sent = new Map();

  function statusOf(form) {
    return document.getElementById(form.getAttribute("hx-target").slice(1));
  }

  function pending(form) {
    return (edits.get(form) || 0) > (sent.get(form) || 0);
  }

  function edited(form) {
    edits.set(form, (edits.get(form) || 0) + 1);
    var status = statusOf(form);
    if (status && !status.querySelector("[data-stale-write]")) {
      status.dataset.state = "pending";
      status.textContent = "Not saved yet…";
    }
  }

  sheet.addEventListener("input", function (event) {
    var form = event.target.closest("[data-extraction-field]");
    if (form) { edited(form); }
  });

  // "Clear" empties a single choice: no radio checked, and the form saves that.
  sheet.addEventListener("click", function (event) {
    var clear = event.target.closest("[data-extraction-clear]");
    if (!clear) { return; }
    var form = clear.closest("[data-extraction-field]");
    form.querySelectorAll("input[type=radio]").forEach(function (radio) { radio.checked = false; });
    edited(form);
    form.dispatchEvent(new Event("change", { bubbles: true }));
  });

  function payloadOf(form) {
    return new URLSearchParams(new FormData(form)).toString();
  }

  // The edits a request carries are those made before it left. A field's form is not sent
  // again with the payload (value and version) of its request in flight or of the last one
  // the server answered: the answer would be the same. That happens when a refused save moves
  // the focus to "Apply mine anyway" and the field's change event fires; its second refusal
  // could land after the forced save and show "Not saved" over the stored value.
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("[data-extraction-field]")) { return; }
    var payload = payloadOf(form);
    if (payload === form.dataset.inFlight || payload === form.dataset.answered) {
      event.preventDefault();
      return;
    }
    form.dataset.inFlight = payload;
    if (edits.has(form)) { form.dataset.carries = String(edits.get(form)); }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("[data-extraction-field]")) { return; }
    // An answer the server gave (stored, refused or invalid) is final for that payload; a
    // network failure or server error is not, so the same payload may go again.
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    if (status >= 200 && status < 500) { form.dataset.answered = form.dataset.inFlight; }
    delete form.dataset.inFlight;
    if (edits.has(form) && event.detail.successful) {
      sent.set(form, Number(form.dataset.carries || 0));
    }
  });
  // A refused value is marked invalid on its input(s) until the server accepts one.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var status = event.detail.elt;
    if (!status || !status.classList || !status.classList.contains("extraction-status")) { return; }
    var form = sheet.querySelector("[data-extraction-field][hx-target='#" + status.id + "']");
    if (!form) { return; }
    var invalid = status.dataset.state === "error";
    form.querySelectorAll("input:not([type=hidden]), textarea").forEach(function (input) {
      input.classList.toggle("is-invalid", invalid);
      input.setAttribute("aria-invalid", invalid ? "true" : "false");
    });
  });

  function flush() {
    edits.forEach(function (count, form) {
      if (pending(form)) {
        navigator.sendBeacon(form.action, new FormData(form));
        sent.set(form, count);
      }
    });
  }
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { flush(); }
  });
  // "Mark done" submits a normal form: send what is still pending first.
  document.querySelectorAll("[data-extraction-done]").forEach(function (button) {
    button.addEventListener("click", flush);
  });
})();
