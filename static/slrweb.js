// slrweb: small behaviours shared by all pages. Page-specific keyboard handling lives with
// the page's template so each stage owns its shortcuts.
document.addEventListener("htmx:responseError", function (event) {
  var status = event.detail.xhr.status;
  var message = status === 403 ? "Your role does not allow this action."
    : status === 404 ? "Not found."
    : "The server could not complete this request (" + status + ").";
  var box = document.getElementById("htmx-error");
  if (!box) {
    box = document.createElement("div");
    box.id = "htmx-error";
    box.className = "alert alert-danger position-fixed bottom-0 end-0 m-3";
    box.setAttribute("role", "alert");
    document.body.appendChild(box);
  }
  box.textContent = message;
});

// Escape closes an inline editor: it follows the editor's Cancel link (marked data-cancel).
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape" || !event.target.closest) { return; }
  var form = event.target.closest("form");
  var cancel = form && form.querySelector("[data-cancel]");
  if (cancel) {
    event.preventDefault();
    cancel.click();
  }
});

// Focus after an htmx answer: a form or link marked data-focus-after="sel|sel..." sends the focus
// to the first focusable match after its section is swapped (not to <body>). Answers with errors
// (4xx) keep the element they mark autofocus (the first invalid field, "Apply mine anyway").
document.addEventListener("htmx:beforeRequest", function (event) {
  var source = event.detail.elt.closest && event.detail.elt.closest("[data-focus-after]");
  if (source) { event.detail.xhr.slrwebFocusAfter = source.getAttribute("data-focus-after"); }
});
document.addEventListener("htmx:afterSettle", function (event) {
  var xhr = event.detail.xhr;
  var selectors = xhr && xhr.slrwebFocusAfter;
  if (!selectors || xhr.status >= 400) { return; }
  xhr.slrwebFocusAfter = null;
  var lists = selectors.split("|");
  for (var i = 0; i < lists.length; i++) {
    if (!lists[i]) { continue; }
    var candidates = document.querySelectorAll(lists[i]);
    for (var j = 0; j < candidates.length; j++) {
      candidates[j].focus();
      if (document.activeElement === candidates[j]) { return; }
    }
  }
});

// A form marked data-confirm asks before it submits (deleting things that hold entered work).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); }
});

// A read-only field marked data-select-on-focus selects its whole value (a token to copy).
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-focus]")) { event.target.select(); }
});
