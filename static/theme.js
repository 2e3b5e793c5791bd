// Applies the remembered theme before the first paint: loaded in <head> without defer (an
// external file, as CSP allows no inline script). A theme in the address (__theme) wins.
(function () {
  "use strict";
  var root = document.documentElement;
  if (root.getAttribute("data-theme") !== "system") return;
  var stored = null;
  try { stored = window.localStorage.getItem("trackio-theme"); } catch (e) { return; }
  if (stored === "light" || stored === "dark") root.setAttribute("data-theme", stored);
})();
