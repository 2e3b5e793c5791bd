// trackio_flask page glue: draw panels with vega-embed, apply refresh data to existing views,
// share x-zoom across panels, and guard polling (hidden tab, Retry-After, back-off).
// No inline scripts and no eval: the page runs under CSP script-src 'self'.
(function () {
  "use strict";

  var NO_LIMIT = 1e300;
  var views = new Map(); // panel id -> {view, rows, shape}
  var specs = {};
  var zoom = null; // [lo, hi] or null
  var observer = null;

  // ---- data ---------------------------------------------------------------------------

  var HOVER_POINTS = 120; // per series: enough to hover, few enough to draw fast

  function rowsOf(series, everyPoint) {
    var rows = [];
    series.forEach(function (s) {
      var count = s.i.length, stride = everyPoint ? 1 : Math.max(1, Math.ceil(count / HOVER_POINTS));
      for (var j = 0; j < count; j++) {
        rows.push({ r: s.r, n: s.n, c: s.c, i: s.i[j], x: s.x[j], y: s.y[j], s: s.s ? s.s[j] : undefined,
                    h: j % stride === 0 || j === count - 1 });
      }
    });
    return rows;
  }

  function readJSON(el) {
    try { return JSON.parse(el.textContent || "null"); } catch (e) { return null; }
  }

  // The page's theme: light or dark, or the browser's preference when the page says "system".
  function pageTheme() {
    var theme = document.documentElement.dataset.theme;
    if (theme === "light" || theme === "dark") return theme;
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    return dark ? "dark" : "light";
  }

  // ---- drawing ------------------------------------------------------------------------

  var compiled = {}; // shape -> Vega spec, compiled from Vega-Lite once per page

  // specs: {shape: {theme: Vega-Lite spec}}; shapes are opaque names chosen by the server.
  function vegaSpec(shape) {
    var theme = pageTheme(), key = shape + " " + theme;
    var source = specs[shape] && specs[shape][theme];
    if (!compiled[key] && source) compiled[key] = window.vegaLite.compile(source).spec;
    return compiled[key];
  }

  function embed(panel) {
    var entry = views.get(panel.id);
    if (!entry || entry.view || entry.pending) return;
    var spec = vegaSpec(entry.shape);
    if (!spec || !window.vegaEmbed) return;
    entry.pending = true;
    var target = panel.querySelector(".chart");
    window.vegaEmbed(target, spec, {
      mode: "vega",
      actions: { export: true, source: false, compiled: false, editor: false },
      renderer: "canvas",
      ast: true,
      expr: window.vegaInterpreter.expressionInterpreter
    }).then(function (result) {
      entry.view = result.view;
      entry.pending = false;
      // The shared spec holds no data; this panel's rows go into the named dataset.
      entry.view.insert("pts", entry.rows);
      if (entry.kind === "line") {
        applyZoomTo(entry.view);
        entry.view.addSignalListener("brush", debounce(function (name, value) { onBrush(value, entry.view); }, 350));
      }
      return entry.view.runAsync();
    }).then(function () {
      panel.classList.add("drawn");
    }).catch(function (err) {
      entry.pending = false;
      console.error("chart failed", panel.id, err);
    });
  }

  function setupPanels(root) {
    var specEl = document.getElementById("specs");
    if (specEl) { specs = readJSON(specEl) || {}; compiled = {}; }
    views.forEach(function (entry) { if (entry.view) entry.view.finalize(); });
    views.clear();
    if (observer) observer.disconnect();
    observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { observer.unobserve(e.target); embed(e.target); } });
    }, { rootMargin: "300px" }) : null;
    (root || document).querySelectorAll(".panel").forEach(function (panel) {
      var island = panel.querySelector(".panel-data");
      views.set(panel.id, { view: null, rows: rowsOf(readJSON(island) || []), shape: panel.dataset.shape,
                            kind: panel.dataset.kind });
      if (observer) observer.observe(panel); else embed(panel);
    });
  }

  function applyDelta(delta) {
    Object.keys(delta || {}).forEach(function (pid) {
      var entry = views.get(pid);
      if (!entry) return;
      delta[pid].forEach(function (s) {
        var k = s.k, run = s.r;
        var fresh = rowsOf([s], true);
        entry.rows = entry.rows.filter(function (d) { return !(d.r === run && d.i >= k); }).concat(fresh);
        if (entry.view) {
          entry.view.change("pts", window.vega.changeset()
            .remove(function (d) { return d.r === run && d.i >= k; })
            .insert(fresh));
        }
      });
      if (entry.view) entry.view.runAsync();
    });
  }

  // ---- shared zoom --------------------------------------------------------------------

  function applyZoomTo(view) {
    view.signal("xmin", zoom ? zoom[0] : -NO_LIMIT).signal("xmax", zoom ? zoom[1] : NO_LIMIT);
  }

  function setZoom(range) {
    zoom = range;
    views.forEach(function (entry) {
      if (entry.view && entry.kind === "line") { applyZoomTo(entry.view); entry.view.runAsync(); }
    });
    var reset = document.getElementById("reset-zoom");
    if (reset) reset.hidden = !zoom;
    var url = new URL(window.location.href);
    if (zoom) { url.searchParams.set("xmin", zoom[0]); url.searchParams.set("xmax", zoom[1]); }
    else { url.searchParams.delete("xmin"); url.searchParams.delete("xmax"); }
    window.history.replaceState(null, "", url.toString());
  }

  function onBrush(value, view) {
    if (!value || !value.x || value.x.length !== 2) return;
    var lo = +value.x[0], hi = +value.x[1];
    if (!(hi > lo)) return;
    try { view.signal("brush_x", []).runAsync(); } catch (e) { /* brush already gone */ }
    setZoom([lo, hi]);
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  // ---- polling guard ------------------------------------------------------------------

  var pausedUntil = 0, failures = 0, noticeTimer = null;
  var MIN_PAUSE = 1000, MAX_PAUSE = 300000;

  function cooldown() {
    var dash = document.getElementById("dashboard");
    var seconds = dash ? parseFloat(dash.dataset.cooldown) : NaN;
    return (isNaN(seconds) ? 15 : seconds) * 1000;
  }

  function parseRetryAfter(value) {
    if (!value) return null;
    value = String(value).trim();
    if (/^\d+$/.test(value)) return parseInt(value, 10) * 1000;
    var when = Date.parse(value);
    return isNaN(when) ? null : Math.max(0, when - Date.now());
  }

  function pause(ms, why) {
    ms = Math.min(Math.max(ms, MIN_PAUSE), MAX_PAUSE);
    pausedUntil = Math.max(pausedUntil, Date.now() + ms);
    showNotice(why);
  }

  function showNotice(why) {
    var notice = document.getElementById("poll-notice");
    if (!notice) return;
    clearInterval(noticeTimer);
    function tick() {
      var left = Math.ceil((pausedUntil - Date.now()) / 1000);
      if (left <= 0) {
        notice.hidden = true;
        clearInterval(noticeTimer);
        triggerPoll();
        return;
      }
      notice.hidden = false;
      notice.textContent = why + " — paused, resuming in " + left + " s";
    }
    tick();
    noticeTimer = setInterval(tick, 500);
  }

  function onStatus(status, header) {
    if (status === 429 || status === 503) {
      // Retry-After is honoured on these only (it may ride on other statuses too).
      var ms = parseRetryAfter(header);
      if (ms === null) ms = cooldown() * (1 + Math.random() * 0.3);
      pause(ms, status === 429 ? "Server asked to slow down" : "Server busy");
      return;
    }
    if (status >= 500 || status === 0) {
      failures += 1;
      pause(Math.min(MAX_PAUSE, 1000 * Math.pow(2, failures)) * (0.8 + Math.random() * 0.4),
            "Server unreachable");
      return;
    }
    if (status < 400) failures = 0;
  }

  function blocked(elt) {
    return elt && elt.hasAttribute && elt.hasAttribute("data-poll") &&
      (document.hidden || Date.now() < pausedUntil);
  }

  function triggerPoll() {
    if (document.hidden || Date.now() < pausedUntil || !window.htmx) return;
    var poller = document.getElementById("poller");
    if (poller) window.htmx.trigger(poller, "poll-now");
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    if (blocked(e.detail.elt)) e.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    if (xhr && e.detail.elt && e.detail.elt.id === "poller") {
      onStatus(xhr.status, xhr.getResponseHeader("Retry-After"));
    }
  });
  document.addEventListener("htmx:sendError", function () { onStatus(0, null); });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) triggerPoll();
  });

  // After a refresh: new panels (full redraw) or per-panel changesets.
  // A refresh swaps in new #panels, #delta or #run-list elements; each new element is handled
  // exactly once (htmx fires swap events once per swapped element, so compare identities).
  var seen = { panels: null, delta: null, "run-list": null };

  function afterRefresh() {
    var panels = document.getElementById("panels");
    if (panels && panels !== seen.panels) { seen.panels = panels; setupPanels(panels); }
    var delta = document.getElementById("delta");
    if (delta && delta !== seen.delta) { seen.delta = delta; applyDelta(readJSON(delta)); }
    var runs = document.getElementById("run-list");
    if (runs && runs !== seen["run-list"]) { seen["run-list"] = runs; bindControls(runs); }
  }
  document.addEventListener("htmx:afterSettle", afterRefresh);

  // ---- controls -----------------------------------------------------------------------

  function bindControls(root) {
    (root || document).querySelectorAll("[data-autosubmit]").forEach(function (input) {
      if (input.dataset.bound) return;
      input.dataset.bound = "1";
      input.addEventListener("change", function () {
        var form = input.form || document.getElementById("controls");
        if (!form) return;
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
      if (out) range.addEventListener("input", function () { out.textContent = range.value; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var dash = document.getElementById("dashboard");
    if (dash && dash.dataset.xmin !== "" && dash.dataset.xmax !== "") {
      zoom = [parseFloat(dash.dataset.xmin), parseFloat(dash.dataset.xmax)];
      var reset = document.getElementById("reset-zoom");
      if (reset) reset.hidden = false;
    }
    var resetButton = document.getElementById("reset-zoom");
    if (resetButton) resetButton.addEventListener("click", function () { setZoom(null); });
    bindControls(document);
    setupPanels(document);
    seen.panels = document.getElementById("panels");
    seen.delta = document.getElementById("delta");
    seen["run-list"] = document.getElementById("run-list");
  });

  window.trackioFlask = { views: views, zoom: function () { return zoom; }, setZoom: setZoom };
})();
