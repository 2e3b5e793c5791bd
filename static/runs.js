// Checkbox lists on the Runs and Compare pages: a filter box that narrows a list as you type,
// and "all"/"none" buttons for the boxes still shown. Choices travel in the surrounding GET
// form (so the URL holds them); htmx applies the form on "change", a plain submit without it.
(function () {
  "use strict";

  function listOf(element, attribute) {
    return document.getElementById(element.getAttribute(attribute));
  }

  // Both forms apply on "change" through htmx; should htmx be missing, a plain GET does.
  function apply(form) {
    if (!form) return;
    if (window.htmx) form.dispatchEvent(new Event("change", { bubbles: true }));
    else form.submit();
  }

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-filter-list]")) return;
    var list = listOf(box, "data-filter-list");
    if (!list) return;
    var needle = box.value.trim().toLowerCase();
    list.querySelectorAll("label").forEach(function (label) {
      label.hidden = needle !== "" && label.textContent.toLowerCase().indexOf(needle) === -1;
    });
    list.querySelectorAll("fieldset").forEach(function (group) {
      group.hidden = !group.querySelector("label:not([hidden])");
    });
  });

  // The filter box narrows a list; it is not a setting, so it must neither submit nor apply.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches && event.target.matches("[data-filter-list]")) {
      event.preventDefault();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-filter-list]")) {
      event.stopPropagation();
    }
  }, true);

  // A menu (details.chooser) closes like one: on a click elsewhere or on Escape.
  function closeMenus(except) {
    document.querySelectorAll("details.chooser[open]").forEach(function (menu) {
      if (!except || !menu.contains(except)) menu.removeAttribute("open");
    });
  }
  document.addEventListener("click", function (event) { closeMenus(event.target); });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = event.target.closest && event.target.closest("details.chooser[open]");
    closeMenus(null);
    if (open) open.querySelector("summary").focus();
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-check]");
    if (!button) return;
    var list = listOf(button, "data-check-list");
    if (!list) return;
    var checked = button.getAttribute("data-check") === "all";
    var changed = false;
    list.querySelectorAll("label:not([hidden]) input[type=checkbox]").forEach(function (box) {
      if (box.closest("[hidden]") || box.checked === checked) return;
      box.checked = checked;
      changed = true;
    });
    if (changed) apply(list.closest("form"));
  });
})();
