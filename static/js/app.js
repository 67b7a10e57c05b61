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
// Visit form: show each role's section only while that role is ticked. Without script every
// section shows; the server requires a role's fields only when the role is ticked either way.
(function () {
  var form = document.querySelector("[data-visit-form]");
  if (!form) return;
  function sync() {
    form.querySelectorAll(".role-section[data-role]").forEach(function (section) {
      var box = form.querySelector('input[name="roles"][value="' + section.getAttribute("data-role") + '"]');
      section.classList.toggle("is-hidden", !!box && !box.checked);
    });
  }
  form.addEventListener("change", function (event) {
    if (event.target.name === "roles") sync();
  });
  sync();
})();
