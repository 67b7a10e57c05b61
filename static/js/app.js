// Behaviour that would otherwise need inline script (the CSP allows none).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  var message = button && button.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  var target = event.target.closest("[data-copy]");
  if (!target) return;
  var source = document.getElementById(target.getAttribute("data-copy"));
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim());
    target.textContent = target.getAttribute("data-copied") || target.textContent;
  }
});
