// Extraction drafts: every input posts itself as you type (htmx). This keeps track of inputs
// whose last change has not reached the server yet and sends them when the page is left, so
// nothing typed is lost on navigation.
(function () {
  var pending = new Set();
  var form = document.querySelector("[data-extraction-form]");
  if (!form) { return; }
  var token = form.querySelector("input[name=csrfmiddlewaretoken]");

  // The sheet saves field by field; Enter in a field must not submit it as a whole.
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  // "Clear" of a single-choice field unticks its options (its htmx post stores the empty value).
  form.addEventListener("click", function (event) {
    var clear = event.target.closest("[data-clear-choice]");
    if (!clear) { return; }
    clear.closest("[role=radiogroup]").querySelectorAll("input").forEach(function (input) { input.checked = false; });
  });
  form.addEventListener("input", function (event) {
    var input = event.target.closest("[data-autosave]");
    if (input) { pending.add(input); }
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && event.detail.successful) { pending.delete(elt); }
  });

  function payload(input) {
    var data = new FormData();
    data.append("csrfmiddlewaretoken", token ? token.value : "");
    if (input.type === "checkbox") {
      input.closest("fieldset").querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
        data.append("value", box.value);
      });
    } else {
      data.append("value", input.value);
    }
    return data;
  }

  function flush() {
    pending.forEach(function (input) {
      navigator.sendBeacon(input.getAttribute("hx-post"), payload(input));
    });
    pending.clear();
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

// Validation errors (422) carry a message fragment: show it in place.
document.body.addEventListener("htmx:beforeSwap", function (event) {
  if (event.detail.xhr.status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
