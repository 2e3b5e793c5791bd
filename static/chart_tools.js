// Per panel tools: full screen (Esc exits) redrawn at full resolution for the screen's width,
// PNG and SVG exports that carry the chart's title, a legend and the theme's solid background,
// and CSV links that follow the zoom. Uses the drawing script's API (window.trackioFlask).
// No inline scripts and no eval (CSP script-src 'self').
(function () {
  "use strict";

  var FULL_SLACK = 150; // px: caption, legend, x axis and padding around a full-screen chart

  function api() { return window.trackioFlask; }
  function entryOf(panel) { return api() && api().views.get(panel.id); }
  function isSystem(panel) { return !!panel.closest(".section.system"); }

  function fit(entry) {
    var view = entry.view;
    if (!view) return;
    var full = entry.panel.classList.contains("fullscreen");
    if (full) view.height(Math.max(200, window.innerHeight - FULL_SLACK));
    // Widths (and the heights of charts not in full screen) follow the window's resize event.
    window.dispatchEvent(new Event("resize"));
    view.runAsync().then(function () { if (full) fetchFull(entry); });
  }

  // The panel's points again, bucketed for the width it now has (views/series.py).
  function fetchFull(entry) {
    var panels = document.getElementById("panels");
    if (!panels || !panels.dataset.zoomUrl || !entry.view || !window.fetch) return;
    if (window.trackioPoll && window.trackioPoll.paused()) return;
    var url = new URL(panels.dataset.zoomUrl, window.location.href);
    url.searchParams.delete("xmin");
    url.searchParams.delete("xmax");
    url.searchParams.set("panel", entry.panel.id);
    url.searchParams.set("width", String(Math.round(entry.view.width())));
    var zoom = api().zoom();
    if (zoom && !isSystem(entry.panel)) {
      url.searchParams.set("xmin", zoom[0]);
      url.searchParams.set("xmax", zoom[1]);
    }
    var wanted = url.toString();
    entry.fullWanted = wanted;
    window.fetch(wanted, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (window.trackioPoll) window.trackioPoll.onStatus(response.status, response.headers.get("Retry-After"));
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (!answer || entry.fullWanted !== wanted || !entry.panel.classList.contains("fullscreen")) return;
        var series = (answer.panels || {})[entry.panel.id];
        if (!series) return;
        entry.full = { series: series };
        entry.panel.dataset.resolution = "full";
        api().load(entry);
      })
      .catch(function () { /* the overview stays */ });
  }

  function setFullscreen(panel, on) {
    panel.classList.toggle("fullscreen", on);
    document.body.classList.toggle("has-fullscreen", !!document.querySelector(".panel.fullscreen"));
    var button = panel.querySelector("[data-tool=fullscreen]");
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
    var entry = entryOf(panel);
    if (!entry) return;
    if (!on) {
      entry.fullWanted = null;
      delete panel.dataset.resolution;
      if (entry.full) { entry.full = null; if (entry.view) api().load(entry); }
    }
    if (entry.view) fit(entry); else api().embed(panel);
  }

  document.addEventListener("trackio:drawn", function (event) {
    var panel = document.getElementById(event.detail.id);
    var entry = panel && panel.classList.contains("fullscreen") && entryOf(panel);
    if (entry) fit(entry);
  });
  document.addEventListener("trackio:zoom", function () {
    document.querySelectorAll(".panel.fullscreen").forEach(function (panel) {
      var entry = entryOf(panel);
      if (entry && entry.view && !isSystem(panel)) fetchFull(entry);
    });
  });
  // New panels (a control change): a panel left in full screen is gone.
  document.addEventListener("htmx:afterSettle", function () {
    document.body.classList.toggle("has-fullscreen", !!document.querySelector(".panel.fullscreen"));
  });

  // ---- exports ----------------------------------------------------------------------------

  function fileStem(panel) {
    return (panel.dataset.metric || "chart").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "chart";
  }

  // The chart as drawn (same spec, data, zoom and size), plus a title, a legend of its runs
  // (and device dashes) and the page's background, as a view of its own that is never shown.
  function exportSpec(entry) {
    var tf = api(), view = entry.view, panel = entry.panel;
    var spec = JSON.parse(JSON.stringify(tf.vegaSpec(entry.shape)));
    var page = window.getComputedStyle(document.body);
    var background = page.backgroundColor, ink = page.color;
    var series = tf.shown(entry);
    var data = tf.datasets(series, {});
    if (entry.alerts && view.data("alrt")) data.alrt = view.data("alrt").map(function (r) { return Object.assign({}, r); });
    spec.data = (spec.data || []).map(function (d) {
      return data[d.name] ? Object.assign({}, d, { values: data[d.name] }) : d;
    });
    spec.signals = (spec.signals || []).map(function (sig) {
      if (sig.name === "width") return { name: "width", value: view.width() };
      if (sig.name === "height") return { name: "height", value: view.height() };
      if ("value" in sig && !sig.update && !sig.on) {
        try { return Object.assign({}, sig, { value: sig.name === "dim" ? 1 : view.signal(sig.name) }); } catch (e) { return sig; }
      }
      return sig;
    });
    spec.autosize = { type: "pad" };
    spec.background = background;
    spec.padding = 12;
    spec.title = { text: panel.dataset.metric || "", anchor: "start", color: ink, fontSize: 14,
                   fontWeight: 600, offset: 10, frame: "group", limit: 0 };
    var runs = [], colours = [], devices = [], seenRun = {};
    series.forEach(function (s) {
      if (!seenRun[s.n]) { seenRun[s.n] = true; runs.push(s.n); colours.push(s.c); }
      if (s.d && devices.indexOf(s.d) === -1) devices.push(s.d);
    });
    spec.scales = (spec.scales || []).concat([{ name: "export_runs", type: "ordinal", domain: runs, range: colours }]);
    var legend = { orient: "bottom", direction: "horizontal", columns: Math.min(4, runs.length) || 1,
                   symbolType: "stroke", symbolStrokeWidth: 3, labelColor: ink, labelLimit: 220,
                   labelFontSize: 11, columnPadding: 12 };
    spec.legends = [Object.assign({ stroke: "export_runs" }, legend)];
    if (devices.length) {
      spec.scales.push({ name: "export_devices", type: "ordinal", domain: devices,
                         range: devices.map(function (d) { return (entry.dashes || {})[d] || [1, 0]; }) });
      spec.legends.push(Object.assign({ strokeDash: "export_devices", symbolStrokeColor: ink }, legend));
    }
    return spec;
  }

  function saveImage(panel, type) {
    var entry = entryOf(panel);
    if (!entry || !entry.view || !window.vega) return;
    var exported = new window.vega.View(window.vega.parse(exportSpec(entry), null, { ast: true }), {
      renderer: "none", expr: window.vegaInterpreter.expressionInterpreter
    });
    exported.toImageURL(type, type === "png" ? 2 : 1).then(function (url) {
      var link = document.createElement("a");
      link.href = url;
      link.download = fileStem(panel) + "." + type;
      document.body.appendChild(link);
      link.click();
      link.remove();
    }).catch(function (err) {
      console.error("image export failed", panel.id, err);
    }).then(function () { exported.finalize(); });
  }

  function withZoom(link) {
    var url = new URL(link.getAttribute("href"), window.location.href);
    url.searchParams.delete("xmin");
    url.searchParams.delete("xmax");
    var entry = entryOf(link.closest(".panel"));
    var zoom = api().zoom();
    if (zoom && entry && entry.kind === "line") {
      url.searchParams.set("xmin", zoom[0]);
      url.searchParams.set("xmax", zoom[1]);
    }
    link.href = url.toString();
  }

  document.addEventListener("click", function (event) {
    var tool = event.target.closest && event.target.closest("[data-tool]");
    var panel = tool && tool.closest(".panel");
    if (!panel) return;
    var name = tool.dataset.tool;
    if (name === "fullscreen") setFullscreen(panel, !panel.classList.contains("fullscreen"));
    else if (name === "png" || name === "svg") saveImage(panel, name);
    else if (name === "csv" || name === "csv-raw" || name.indexOf("image-link") === 0) withZoom(tool);
    var menu = tool.closest("details.tool-menu");
    if (menu && name !== "fullscreen") menu.open = false;
  });

  // A click anywhere else closes an open download menu.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.tool-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.tool-menu[open]").forEach(function (menu) { menu.open = false; });
    document.querySelectorAll(".panel.fullscreen").forEach(function (panel) { setFullscreen(panel, false); });
  });
})();
