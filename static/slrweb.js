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

// A form marked data-confirm asks before it submits (deleting things that hold entered work).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) { event.preventDefault(); }
});
