// The Sweep tab: drag along a parallel-coordinates axis to select the runs whose line crosses
// it inside that range (ranges on several axes intersect; a click on an axis clears its range).
// The selection goes into the address (a `sel` token), so the other tabs' links carry it (page.js),
// and into the tab's forms, so a new metric keeps it. A changed setting submits its form.
(function () {
  "use strict";

  var svg = document.getElementById("parcoords");
  var ranges = {}; // axis index -> [y0, y1] in SVG units
  var drag = null;

  function svgY(event) {
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse()).y;
  }

  function lines() { return Array.prototype.slice.call(svg.querySelectorAll(".pc-line")); }

  function inside(line) {
    var ys = line.dataset.y.split(",");
    return Object.keys(ranges).every(function (axis) {
      var y = ys[axis] === "" ? NaN : parseFloat(ys[axis]);
      return y >= ranges[axis][0] && y <= ranges[axis][1];
    });
  }

  function showBrush(axis) {
    var rect = svg.querySelector(".pc-brush[data-axis='" + axis + "']");
    if (!rect) return;
    var range = ranges[axis];
    rect.hidden = !range;
    if (range) { rect.setAttribute("y", range[0]); rect.setAttribute("height", range[1] - range[0]); }
  }

  // The selection as a token (selection.py; controls.js encodes it as the sidebar does), so the
  // address stays short however many runs the brush holds.
  function tokenOf(keys) {
    var chosen = new Set(keys), picked = {};
    lines().forEach(function (line) { if (chosen.has(line.dataset.key)) picked[+line.dataset.i] = true; });
    return window.trackioControls.encodeToken(picked, +svg.dataset.count, svg.dataset.fp);
  }

  function setAddress(keys) {
    var url = new URL(window.location.href);
    var token = keys === null ? "" : tokenOf(keys);
    ["runs", "run_ids", "sel"].forEach(function (name) { url.searchParams.delete(name); });
    if (token) url.searchParams.set("sel", token);
    window.history.pushState({ sweep: true }, "", url.toString());
    var input = document.getElementById("sweep-sel");
    if (input) { input.value = token; input.disabled = !token; }
    document.dispatchEvent(new CustomEvent("trackio:address"));
  }

  function showSelection(keys) {
    var chosen = keys === null ? null : new Set(keys);
    lines().forEach(function (line) { line.classList.toggle("off", chosen !== null && !chosen.has(line.dataset.key)); });
    document.querySelectorAll(".sc-point").forEach(function (point) {
      point.classList.toggle("off", chosen !== null && !chosen.has(point.dataset.key));
    });
    var count = document.getElementById("sweep-count");
    if (count) count.textContent = keys === null ? "All" : String(keys.length);
    var list = document.getElementById("sweep-selected");
    if (!list) return;
    list.textContent = "";
    if (keys === null) return;
    lines().filter(function (line) { return chosen.has(line.dataset.key); }).slice(0, 50).forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line.dataset.name; // names are hostile: text only
      list.appendChild(item);
    });
  }

  function apply() {
    var all = lines();
    var keys = Object.keys(ranges).length ? all.filter(inside).map(function (line) { return line.dataset.key; }) : null;
    // Every run of the project in range: that is "all", which needs no list in the address.
    if (keys && keys.length === all.length && String(all.length) === svg.dataset.total) keys = null;
    showSelection(keys);
    setAddress(keys);
  }

  if (svg) {
    svg.addEventListener("pointerdown", function (event) {
      var area = event.target.closest(".pc-brush-area");
      if (!area) return;
      event.preventDefault();
      area.setPointerCapture(event.pointerId);
      drag = { axis: area.dataset.axis, from: svgY(event), area: area, moved: false };
    });
    svg.addEventListener("pointermove", function (event) {
      if (!drag) return;
      var to = svgY(event);
      if (Math.abs(to - drag.from) < 2 && !drag.moved) return;
      drag.moved = true;
      var top = parseFloat(drag.area.getAttribute("y")), bottom = top + parseFloat(drag.area.getAttribute("height"));
      var y0 = Math.max(top, Math.min(drag.from, to)), y1 = Math.min(bottom, Math.max(drag.from, to));
      ranges[drag.axis] = [y0, y1];
      showBrush(drag.axis);
    });
    svg.addEventListener("pointerup", function () {
      if (!drag) return;
      if (!drag.moved) delete ranges[drag.axis]; // a click clears that axis's range
      showBrush(drag.axis);
      drag = null;
      apply();
    });
  }

  // The keyboard: on a focused axis, ↑/↓ move its range (a fifth of the axis, made on the
  // first press), Shift+↑/↓ widen or narrow it, Esc or Delete clears it.
  if (svg) svg.addEventListener("keydown", function (event) {
    var area = event.target.closest && event.target.closest(".pc-brush-area");
    if (!area) return;
    var axis = area.dataset.axis, top = parseFloat(area.getAttribute("y"));
    var height = parseFloat(area.getAttribute("height")), step = height / 20;
    if (event.key === "Escape" || event.key === "Delete") {
      if (!ranges[axis]) return;
      delete ranges[axis];
    } else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      var up = event.key === "ArrowUp";
      var range = ranges[axis] || [top + height * 0.4, top + height * 0.6];
      if (ranges[axis] && event.shiftKey) {
        range = [range[0] + (up ? -step : step), range[1]];
        if (range[1] - range[0] < step) range[0] = range[1] - step;
      } else if (ranges[axis]) {
        var shift = up ? -Math.min(step, range[0] - top) : Math.min(step, top + height - range[1]);
        range = [range[0] + shift, range[1] + shift];
      }
      ranges[axis] = [Math.max(top, range[0]), Math.min(top + height, range[1])];
    } else {
      return;
    }
    event.preventDefault();
    showBrush(axis);
    apply();
  });

  var clear = document.getElementById("sweep-clear");
  if (clear) clear.addEventListener("click", function () {
    Object.keys(ranges).forEach(function (axis) { delete ranges[axis]; showBrush(axis); });
    showSelection(null);
    setAddress(null);
  });

  // A changed setting submits its form: controls.js's data-autosubmit.

  window.addEventListener("popstate", function () { window.location.reload(); });
})();
