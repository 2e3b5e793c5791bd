// The group control: choosing "run name regex…" shows the regex box (and focuses it); typing a
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

  document.addEventListener("input", function (event) {
    if (event.target.id !== "group-re") return;
    var select = document.getElementById("group-select");
    if (select) select.value = "name";
  });
})();
