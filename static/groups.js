// The group control and the group chips: choosing "run name regex…" shows the regex box (and focuses it); typing a
// regex picks that choice. Applying is controls.js's, like every #controls field.
(function () {
  "use strict";

  document.addEventListener("change", function (event) {
    if (event.target.id !== "group-select") return;
    var box = document.getElementById("group-re");
    if (!box) return;
    box.hidden = event.target.value !== "name";
    if (!box.hidden) box.focus();
  });

  // A group's box shows or hides the whole group: its hide_group field (tied to #controls)
  // is sent while the box is unticked; the change applies in place like any control.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.classList || !box.classList.contains("group-toggle")) return;
    var field = box.parentNode.querySelector("input[name=hide_group]");
    if (!field) return;
    field.disabled = box.checked;
    box.parentNode.classList.toggle("off", !box.checked);
    field.dispatchEvent(new Event("change", { bubbles: true }));
  });

  document.addEventListener("input", function (event) {
    if (event.target.id !== "group-re") return;
    var select = document.getElementById("group-select");
    if (select) select.value = "name";
  });
})();
