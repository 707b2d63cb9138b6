// "c" opens the next study you have not finished (the page marks that link data-continue).
document.addEventListener("keydown", function (event) {
  var tag = event.target.tagName;
  if (event.key !== "c" || event.ctrlKey || event.metaKey || event.altKey || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
  var link = document.querySelector("[data-continue]");
  if (link) { window.location.href = link.href; }
});
