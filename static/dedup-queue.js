// Shortcuts of this page: each key clicks the button that prints it, so the keyboard and the
// mouse take the same path (htmx swaps the next pair in).
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) { return; }
  var target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) { return; }
  var button = document.querySelector('#dedup-pair [data-shortcut="' + event.key.toLowerCase() + '"]');
  if (button && !button.disabled) { event.preventDefault(); button.click(); }
});
