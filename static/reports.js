// "r" recomputes, "d" jumps to the downloads (ignored while typing in a field).
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var tag = (event.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
  if (event.key === "r") {
    var button = document.getElementById("funnel-recompute");
    if (button) { event.preventDefault(); button.click(); }
  } else if (event.key === "d") {
    var first = document.querySelector("#downloads a");
    if (first) { event.preventDefault(); first.focus(); }
  }
});
