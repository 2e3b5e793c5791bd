// Page controls that apply at once (metrics, histograms, alerts pages): a changed checkbox,
// select or range marked data-autosubmit submits its form, so every setting lives in the URL;
// Enter in a search box submits too. Bound on load and after every htmx swap (a refresh may
// bring a new run list). No inline handlers (CSP).
(function () {
  "use strict";

  // Without the controls form (sidebar hidden, a run's page), a control edits the address.
  function applyToAddress(name) {
    var url = new URL(window.location.href);
    url.searchParams.delete(name);
    document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      if (input.name !== name) return;
      if (input.type === "checkbox" ? input.checked : input.value !== "") {
        url.searchParams.append(name, input.value);
      }
    });
    window.location.assign(url.toString());
  }

  function bindControls(root) {
    (root || document).querySelectorAll("[data-autosubmit]").forEach(function (input) {
      if (input.dataset.bound) return;
      input.dataset.bound = "1";
      input.addEventListener("change", function () {
        var form = input.form || document.getElementById("controls");
        if (!form) { applyToAddress(input.name); return; }
        if (input.name === "run_ids") {
          var mode = document.getElementById("selection-mode");
          if (mode) mode.value = "some";
        }
        if (form.requestSubmit) form.requestSubmit(); else form.submit();
      });
    });
    // Two search boxes share the form, which blocks the browser's implicit submit on Enter.
    (root || document).querySelectorAll("input[type=search]").forEach(function (input) {
      if (input.dataset.enterBound) return;
      input.dataset.enterBound = "1";
      input.addEventListener("keydown", function (event) {
        if (event.key !== "Enter") return;
        event.preventDefault();
        var form = input.form || document.getElementById("controls");
        if (form && form.requestSubmit) form.requestSubmit(); else if (form) form.submit();
      });
    });
    (root || document).querySelectorAll("input[type=range]").forEach(function (range) {
      var out = range.parentNode.querySelector("output");
      if (!out || range.dataset.outputBound) return;
      range.dataset.outputBound = "1";
      range.addEventListener("input", function () { out.textContent = range.value; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { bindControls(document); });
  document.addEventListener("htmx:afterSettle", function () { bindControls(document); });
})();
