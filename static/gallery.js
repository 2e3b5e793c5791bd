// Media & Tables page glue: the image lightbox (←/→/Esc, and buttons), step sliders that join
// the page's state once moved, and status reports of this page's own requests to the polling
// guard (poll.js). The run chooser and order submit through controls.js. No inline scripts.
(function () {
  "use strict";

  var lightbox = { items: [], index: 0 };

  function dialog() { return document.getElementById("lightbox"); }

  function show(index) {
    var items = lightbox.items;
    if (!items.length) return;
    lightbox.index = (index + items.length) % items.length;
    var link = items[lightbox.index];
    var image = document.getElementById("lightbox-image");
    image.src = link.getAttribute("href");
    image.alt = link.dataset.caption || "";
    // textContent, never innerHTML: captions are whatever a training script logged.
    document.getElementById("lightbox-caption").textContent = link.dataset.caption || "";
    document.getElementById("lightbox-meta").textContent = link.dataset.meta || "";
    document.getElementById("lightbox-position").textContent =
      (lightbox.index + 1) + " / " + items.length;
  }

  function open(link) {
    var group = link.closest("[data-lightbox-group]") || document;
    lightbox.items = Array.prototype.slice.call(group.querySelectorAll("a[data-lightbox]"));
    var box = dialog();
    if (!box.open) box.showModal();
    show(lightbox.items.indexOf(link));
  }

  function close() {
    var box = dialog();
    if (box && box.open) box.close();
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-lightbox]");
    if (link && dialog()) {
      e.preventDefault();
      open(link);
      return;
    }
    if (!dialog() || !dialog().open) return;
    if (e.target.closest("#lightbox-prev")) show(lightbox.index - 1);
    else if (e.target.closest("#lightbox-next")) show(lightbox.index + 1);
    else if (e.target.closest("#lightbox-close") || e.target === dialog()) close();
  });

  document.addEventListener("keydown", function (e) {
    var box = dialog();
    if (!box || !box.open) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); show(lightbox.index - 1); }
    else if (e.key === "ArrowRight") { e.preventDefault(); show(lightbox.index + 1); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });

  // A slider left at its default follows the newest step; it joins the page state (gets its
  // name) only once someone moves it. controls.js shows its value and submits the run chooser.
  // While it moves, it snaps to the steps that were logged (data-steps; the server snaps too).
  document.addEventListener("input", function (e) {
    var slider = e.target;
    if (!slider.matches || !slider.matches("input[type=range][data-name]")) return;
    if (!slider.name) slider.name = slider.dataset.name;
    var steps = (slider.dataset.steps || "").split(" ").filter(Boolean).map(Number);
    if (!steps.length) return;
    var wanted = Number(slider.value), at = steps[0];
    steps.forEach(function (step) { if (step <= wanted) at = step; });
    if (String(at) !== slider.value) slider.value = String(at);
    var out = slider.parentNode.querySelector("output");
    if (out) out.textContent = slider.value;
  }, true);

  // A 3D object loads three.js (a module of its own) only when someone opens it.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest(".object3d-load");
    if (!button) return;
    var host = button.closest("[data-object3d]");
    import(host.dataset.viewer).then(function (viewer) { return viewer.show(host); })
      .catch(function (error) {
        host.dataset.state = "error";
        var note = host.querySelector(".object3d-note");
        if (note) note.textContent = "The 3D viewer did not load: " + error;
      });
  });

  // Section, filter and "load more" requests share the poller's pause on 429/503/failures.
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr, elt = e.detail.elt;
    // Failures to connect (status 0) are counted once, by poll.js's htmx:sendError listener.
    if (!xhr || !xhr.status || !window.trackioPoll || (elt && elt.id === "poller")) return;
    window.trackioPoll.onStatus(xhr.status, xhr.getResponseHeader("Retry-After"));
  });
})();
