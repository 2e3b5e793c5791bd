// trackio_flask page glue: draw panels with vega-embed (Vega specs compiled on the server), apply
// refresh data to existing views, keep the views whose shape survives a control change (the
// new data goes into them), share x-zoom across panels (re-queried at full resolution), a
// legend per chart (click: only that run; hover: it stands out), a hover readout of every
// run's value at the x under the pointer with a crosshair on every chart of the same x axis,
// alert markers on step charts (polling is guarded by poll.js; the panel tools are in
// chart_tools.js; both are loaded beside this file).
// No inline scripts and no eval: the page runs under CSP script-src 'self'.
(function () {
  "use strict";

  var poll = window.trackioPoll;
  var views = new Map(); // panel id -> {view, series, zoomed, shape, kind, panel}
  var specs = {};
  var zoom = null; // [lo, hi] or null
  var observer = null;
  var alerts = []; // alert markers of the selected runs: {r, n, c, x (step), title, level}
  var alertsShown = true; // the "alert markers" switch (the address keeps alerts=hidden)
  var xTitleOverride = ""; // a metric chosen as x-axis: its name is the axis title

  // ---- data ---------------------------------------------------------------------------
  // Series arrive as columns (see the wire format in dashboard.py); Vega wants one object
  // per drawn point, so rows are built here, once per draw, into the chart's datasets:
  // pts (lines), band (min/max per pixel column), last (each run's latest point) and bad
  // (NaN/±Inf markers). Hover reads the columns directly and fills `hov` with one point.

  var MARKS = { nan: "NaN", inf: "+Inf", ninf: "-Inf" };

  function datasets(series, entry) {
    var out = { pts: [], band: [], last: [], bad: [], hov: [] };
    series.forEach(function (s) { addRows(out, s, entry); });
    return out;
  }

  // A merged device chart draws each device of a run in its own dash (rows without are solid).
  var DASHES = [[1, 0], [6, 3], [2, 2], [8, 3, 2, 3], [12, 4], [4, 4, 1, 4]];

  function dashOf(entry, device) {
    if (!entry.dashes) entry.dashes = {};
    if (!(device in entry.dashes)) {
      entry.dashes[device] = DASHES[Object.keys(entry.dashes).length % DASHES.length];
    }
    return entry.dashes[device];
  }

  function addRows(out, s, entry) {
    var count = s.x.length, xs = s.x, ys = s.y, is = s.i || xs, ss = s.s, lo = s.lo, hi = s.hi;
    var dash = s.d && entry ? dashOf(entry, s.d) : undefined;
    for (var j = 0; j < count; j++) {
      var row = { r: s.r, n: s.n, c: s.c, i: is[j], x: xs[j], y: ys[j] };
      if (dash) row.dash = dash;
      if (ss) row.s = ss[j];
      out.pts.push(row);
      // The band shares the line's row objects (Vega allows a tuple in several datasets).
      if (lo) { row.lo = lo[j]; row.hi = hi[j]; out.band.push(row); }
    }
    if (count) out.last.push(lastRow(s));
    // Hover and the legend address a run's line by its run key (r): a device line's r is
    // "run key \x1f device".
    Object.keys(MARKS).forEach(function (name) {
      (s[name] || []).forEach(function (x) {
        var key = s.r + " " + name + " " + x;
        if (entry && entry.marked) { if (entry.marked[key]) return; entry.marked[key] = true; }
        out.bad.push({ r: s.r, n: s.n, c: s.c, x: x, v: MARKS[name] });
      });
    });
  }

  function lastRow(s) {
    var at = s.x.length - 1, is = s.i || s.x;
    var end = { r: s.r, n: s.n, c: s.c, i: is[at], x: s.x[at], y: s.y[at], h: true };
    if (s.s) end.s = s.s[at];
    return end;
  }

  // Apply a delta series (rows i >= k of run r replaced) to a list of columnar series.
  function mergeSeries(list, d) {
    var at = -1;
    for (var n = 0; n < list.length; n++) if (list[n].r === d.r) { at = n; break; }
    var s = at < 0 ? { r: d.r, n: d.n, c: d.c, x: [], y: [] } : list[at];
    var is = s.i || s.x, cut = is.length;
    while (cut > 0 && is[cut - 1] >= d.k) cut--;
    var merged = { r: d.r, n: d.n, c: d.c, x: s.x.slice(0, cut).concat(d.x), y: s.y.slice(0, cut).concat(d.y),
                   i: is.slice(0, cut).concat(d.i || d.x) };
    if (s.s || d.s) merged.s = (s.s || []).slice(0, cut).concat(d.s || []);
    if (s.lo || d.lo) {
      // New points are raw (their own min and max), unless the delta is a band sent whole.
      merged.lo = (s.lo || []).slice(0, cut).concat(d.lo || d.y);
      merged.hi = (s.hi || []).slice(0, cut).concat(d.hi || d.y);
    }
    // Rows are numbered densely, so rows k.. of the old total are the ones replaced.
    if (d.t) merged.t = d.t;
    else if (s.t) merged.t = s.t - (is.length ? Math.max(0, is[is.length - 1] - d.k + 1) : 0) + d.x.length;
    Object.keys(MARKS).forEach(function (name) {
      if (s[name] || d[name]) merged[name] = (s[name] || []).concat(d[name] || []);
    });
    if (at < 0) list.push(merged); else list[at] = merged;
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

  function formatCount(n) { return Number(n).toLocaleString("en-US"); }

  // "1,024 of 200,000 points" when a chart shows fewer points than its series hold.
  function updateBadge(entry, series) {
    var badge = entry.panel.querySelector(".points-badge");
    var drawn = 0, total = 0, reduced = false;
    series.forEach(function (s) { drawn += s.x.length; total += s.t || s.x.length; if (s.t) reduced = true; });
    if (!badge) return;
    if (!reduced) { badge.hidden = true; return; }
    badge.hidden = false;
    badge.textContent = formatCount(drawn) + " of " + formatCount(total) + " points";
  }

  // ---- drawing ------------------------------------------------------------------------

  // specs: {shape: {theme: Vega spec}}, compiled from Altair on the server; shapes are opaque
  // names chosen by the server.
  function vegaSpec(shape) {
    var source = specs[shape];
    return source && (source[pageTheme()] || source.light || source.dark);
  }

  function runOf(s) { return String(s.r).split("\x1f")[0]; }

  // What a chart draws: its full-screen answer, else its zoomed range, else the overview; only
  // the isolated run when its legend says so (the same list while nothing changed).
  function shown(entry) {
    var list = previewed(entry, entry.full ? entry.full.series : entry.zoomed ? entry.zoomed.series
                                                                           : entry.series);
    if (!entry.isolated) return list;
    if (entry.shownFrom !== list || entry.shownRun !== entry.isolated) {
      entry.shownFrom = list;
      entry.shownRun = entry.isolated;
      entry.shownList = list.filter(function (s) { return runOf(s) === entry.isolated; });
    }
    return entry.shownList;
  }

  function logScale(entry) { return entry.shape.indexOf("-log-") !== -1; }

  function bandOpacity(series) {
    // Many runs: fainter bands, so overlapping ranges stay readable.
    return Math.max(0.05, 0.22 * Math.sqrt(4 / Math.max(4, series.length)));
  }

  // The x and y domains: computed here from the columns once per change (see charts.py).
  function extents(series, range, log) {
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    function take(values) {
      for (var j = 0; j < values.length; j++) { var v = values[j]; if (v < y0) y0 = v; if (v > y1) y1 = v; }
    }
    series.forEach(function (s) {
      var xs = s.x, n = xs.length, from = 0, to = n;
      if (n) { x0 = Math.min(x0, xs[0]); x1 = Math.max(x1, xs[n - 1]); }
      for (var j = 0; j < n; j++) { var x = xs[j]; if (x < x0) x0 = x; if (x > x1) x1 = x; }
      Object.keys(MARKS).forEach(function (name) {
        (s[name] || []).forEach(function (x) { if (x < x0) x0 = x; if (x > x1) x1 = x; });
      });
      if (range) { // only what the zoomed range shows decides the y axis
        while (from < n && xs[from] < range[0]) from++;
        while (to > from && xs[to - 1] > range[1]) to--;
      }
      [s.y, s.s, s.lo, s.hi].forEach(function (values) { if (values) take(values.slice(from, to)); });
    });
    if (!(x1 >= x0)) { x0 = 0; x1 = 1; }
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    if (!(y1 >= y0)) { y0 = log ? 1 : 0; y1 = log ? 10 : 1; }
    if (log) {
      // A little room above and below, in ratio: the data fills the plot (no whole decades).
      if (y1 === y0) { y0 /= 1.5; y1 *= 1.5; } else { var r = Math.pow(y1 / y0, 0.04); y0 /= r; y1 *= r; }
    } else if (y1 === y0) {
      var pad = Math.abs(y0) * 0.05 || 0.5; y0 -= pad; y1 += pad;
    } else {
      var room = (y1 - y0) * 0.03; y0 -= room; y1 += room;
    }
    return { x: [x0, x1], y: [y0, y1] };
  }

  function setExtents(entry, view) {
    var ext = extents(shown(entry), entry.zoomed || entry.full ? zoom : null, logScale(entry));
    entry.ext = ext;
    if (view) view.signal("xext", ext.x).signal("yext", ext.y);
    return ext;
  }

  function prepare(entry) {
    var series = shown(entry);
    entry.loaded = series;
    entry.marked = {};
    updateBadge(entry, series);
    var data = datasets(series, entry);
    if (entry.alerts) data.alrt = alertsShown ? alerts : [];
    data.cross = [];
    data.hil = [];
    renderLegend(entry);
    return data;
  }

  // Replace a drawn chart's data (zoom in or out).
  function load(entry) {
    var data = prepare(entry), view = entry.view;
    if (entry.kind === "line") {
      setExtents(entry, view);
      view.signal("bandop", bandOpacity(shown(entry)));
      ["pts", "band", "last", "bad", "hov", "alrt", "cross", "hil"].forEach(function (name) {
        if (data[name]) view.data(name, data[name]);
      });
      view.signal("dim", 1);
    } else {
      view.data("pts", data.pts);
    }
    return view.runAsync();
  }

  // Per-panel values of signals the shared spec leaves open: the axis titles.
  function titles(entry) {
    var named = { ytitle: entry.panel.dataset.title || entry.panel.dataset.metric || "" };
    if (xTitleOverride && entry.panel.dataset.shape.indexOf("line-metric-") === 0) named.xtitle = xTitleOverride;
    return named;
  }

  // The shared spec with this panel's rows in it, so the first run already has its data
  // (an empty first run would only compute empty extents, and warn about them).
  function specWithData(spec, entry, room) {
    var data = prepare(entry), copy = Object.assign({}, spec), named = titles(entry);
    var plotWidth = room === null ? null : Math.max(10, entry.panel.querySelector(".chart").clientWidth - room);
    if (plotWidth !== null) copy.height = plotHeight(plotWidth);
    if (room !== null) copy.autosize = { type: "pad", resize: true };
    var ext = entry.kind === "line" ? setExtents(entry, null) : null;
    copy.data = (spec.data || []).map(function (d) {
      return data[d.name] ? Object.assign({}, d, { values: data[d.name] }) : d;
    });
    copy.signals = (spec.signals || []).map(function (sig) {
      if (sig.name === "bandop") return Object.assign({}, sig, { value: bandOpacity(shown(entry)) });
      if (sig.name in named) return Object.assign({}, sig, { value: named[sig.name] });
      if (sig.name === "width" && plotWidth !== null) {
        // The page resizes these charts itself (see resizeCharts).
        return { name: "width", value: plotWidth };
      }
      if (ext && (sig.name === "xext" || sig.name === "yext")) {
        return Object.assign({}, sig, { value: sig.name === "xext" ? ext.x : ext.y });
      }
      if (zoom && (sig.name === "xmin" || sig.name === "xmax") && entry.kind === "line") {
        return Object.assign({}, sig, { value: sig.name === "xmin" ? zoom[0] : zoom[1] });
      }
      return sig;
    });
    return copy;
  }

  // Charts are drawn one at a time (the page is one thread anyway): the first is finished
  // sooner, and the others learn from it. Fitting a chart to its container ("fit-x") costs
  // Vega a second pass over every mark item (the first pass only measures the axes); once
  // one chart of a shape has measured how much room its axes take, the others get their
  // plot width up front and a "pad" layout, which needs one pass.
  var queue = [], drawing = false, axisRoom = {};
  var ROOM_SLACK = 8; // px: y-axis labels of other charts may be a little wider

  function embed(panel) {
    var entry = views.get(panel.id);
    if (!entry || entry.view || entry.pending) return;
    entry.pending = true;
    queue.push(entry);
    pump();
  }

  function pump() {
    if (drawing) return;
    if (!queue.length) { drawRestWhenIdle(); return; }
    var entry = queue.shift();
    if (views.get(entry.panel.id) !== entry) { pump(); return; } // redrawn meanwhile
    drawing = true;
    draw(entry).then(function () { drawing = false; pump(); });
  }

  function draw(entry) {
    var panel = entry.panel, spec = vegaSpec(entry.shape), target = panel.querySelector(".chart");
    if (!spec || !window.vegaEmbed) { entry.pending = false; return Promise.resolve(); }
    if (!entry.series.length) {
      // No fake axes: say why the chart is empty.
      entry.pending = false;
      target.textContent = "";
      var note = document.createElement("p");
      note.className = "chart-empty";
      note.textContent = "None of the selected runs logged this metric yet.";
      target.appendChild(note);
      renderLegend(entry);
      entry.fresh = false;
      panel.classList.add("drawn", "empty");
      return Promise.resolve();
    }
    var outer = target.clientWidth, room = axisRoom[entry.shape];
    return window.vegaEmbed(target, specWithData(spec, entry, room === undefined ? null : room), {
      mode: "vega",
      actions: false, // the panel's own tools export PNG, SVG and CSV
      renderer: "canvas",
      ast: true,
      expr: window.vegaInterpreter.expressionInterpreter
    }).then(function (result) {
      entry.view = result.view;
      entry.pending = false;
      if (room === undefined) {
        axisRoom[entry.shape] = Math.max(0, outer - entry.view.width()) + ROOM_SLACK;
        var height = plotHeight(entry.view.width());
        if (height !== entry.view.height()) entry.view.height(height).runAsync();
      } else {
        entry.padded = true;
      }
      if (entry.kind === "line") {
        bindHover(entry, target);
        bindBrush(entry, target);
      }
      entry.fresh = false;
      panel.classList.add("drawn");
      document.dispatchEvent(new CustomEvent("trackio:drawn", { detail: { id: panel.id } }));
    }).catch(function (err) {
      entry.pending = false;
      console.error("chart failed", panel.id, err);
    });
  }

  // Narrow charts (many per row, a phone) get shorter, so none is tall and thin.
  function plotHeight(width) { return Math.round(Math.max(140, Math.min(200, width * 0.62))); }

  var resizeCharts = debounce(function () {
    views.forEach(function (entry) {
      var room = axisRoom[entry.shape], view = entry.view;
      if (!view) return;
      var changed = false;
      if (entry.padded && room !== undefined) {
        var width = Math.max(10, entry.panel.querySelector(".chart").clientWidth - room);
        if (width !== view.width()) { view.width(width); changed = true; }
      }
      if (!entry.panel.classList.contains("fullscreen")) {
        var height = plotHeight(view.width());
        if (height !== view.height()) { view.height(height); changed = true; }
      }
      if (changed) view.runAsync();
    });
  }, 100);
  document.addEventListener("trackio:resize", resizeCharts);
  window.addEventListener("resize", resizeCharts);

  // Charts near the viewport first (an IntersectionObserver queues them); once none is
  // waiting, the rest one at a time while the page is idle.
  var idle = window.requestIdleCallback || function (fn) { return setTimeout(fn, 50); };
  var idleAsked = false;

  function drawRestWhenIdle() {
    if (idleAsked) return;
    idleAsked = true;
    idle(function () {
      idleAsked = false;
      if (drawing || queue.length) return; // pump() asks again when it runs dry
      var next = null;
      views.forEach(function (entry) { if (!next && !entry.view && !entry.pending) next = entry; });
      if (next) embed(next.panel);
    });
  }

  // ---- panels after a page load, a control change or a redraw ----------------------------
  // A new #panels (a control change, a structural change, back/forward) keeps every drawn view
  // whose panel (same metric, same chart shape) is still there: its chart element moves into
  // the new panel before the swap paints (htmx:oobBeforeSwap), and it gets the new data, which
  // costs a fraction of drawing a chart from its spec. Other panels are drawn as on a load.

  function adoptable(id, shape) {
    var old = views.get(id);
    return old && old.view && old.shape === shape && !old.panel.classList.contains("fullscreen") ? old : null;
  }

  function adoptCharts(root) {
    root.querySelectorAll(".panel").forEach(function (panel) {
      var old = adoptable(panel.id, panel.dataset.shape);
      var chart = panel.querySelector(".chart");
      if (!old || !chart) return;
      var kept = old.view.container().closest(".chart");
      if (!kept || kept === chart) return;
      chart.replaceWith(kept);
      panel.classList.add("drawn");
    });
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target, fragment = event.detail.fragment;
    if (target && target.id === "panels" && fragment && fragment.querySelectorAll) adoptCharts(fragment);
  });

  var applying = null; // {started}: a control change being drawn (controls.js says when)
  document.addEventListener("trackio:applying", function (event) { applying = { started: event.detail.started }; });

  function setupPanels(root) {
    var specEl = document.getElementById("specs");
    if (specEl) specs = readJSON(specEl) || {};
    var alertEl = document.getElementById("alerts");
    alerts = (alertEl && readJSON(alertEl)) || [];
    seen.alerts = alertEl;
    var holder = document.getElementById("panels");
    xTitleOverride = (holder && holder.dataset.xTitle) || "";
    if (holder) dataSmoothing = { method: holder.dataset.smoother || "sma", amount: +holder.dataset.smoothing || 0 };
    var toggle = document.getElementById("alerts-toggle");
    if (toggle) toggle.hidden = !alerts.length;
    adoptCharts(root || document);
    var old = new Map(views);
    views.clear();
    zoomMemo = {};
    if (observer) observer.disconnect();
    observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        var entry = views.get(e.target.id);
        if (entry) entry.onScreen = e.isIntersecting;
        if (e.isIntersecting) embed(e.target);
      });
      pump(); // nothing (more) on screen to draw: the rest when idle
    }, { rootMargin: "200px" }) : null;
    var updates = [];
    (root || document).querySelectorAll(".panel").forEach(function (panel) {
      var island = panel.querySelector(".panel-data");
      var entry = { view: null, series: readJSON(island) || [], zoomed: null, full: null, panel: panel,
                    shape: panel.dataset.shape, kind: panel.dataset.kind, fresh: true,
                    alerts: panel.hasAttribute("data-alerts"), isolated: null, onScreen: false };
      views.set(panel.id, entry);
      remember(entry);
      var kept = old.get(panel.id);
      if (kept && kept.view && panel.contains(kept.view.container()) && entry.series.length) {
        entry.view = kept.view;
        entry.padded = kept.padded;
        entry.height = kept.height;
        entry.isolated = kept.isolated && entry.series.some(function (s) { return runOf(s) === kept.isolated; })
          ? kept.isolated : null;
        old.delete(panel.id);
        if (entry.kind === "line") entry.view.signal("xtitle", xTitleOverride || defaultXTitle(entry));
        updates.push({ entry: entry, box: panel.getBoundingClientRect() });
      }
      if (observer) observer.observe(panel); else embed(panel);
    });
    old.forEach(function (entry) { if (entry.view) entry.view.finalize(); });
    // Kept views on screen first, one at a time (the first visible chart is updated soonest).
    var height = window.innerHeight;
    updates.sort(function (a, b) {
      var av = a.box.bottom > 0 && a.box.top < height, bv = b.box.bottom > 0 && b.box.top < height;
      return (bv - av) || (a.box.top - b.box.top);
    });
    (function next(at) {
      if (at >= updates.length) return;
      var entry = updates[at].entry;
      if (views.get(entry.panel.id) !== entry) return; // redrawn again meanwhile
      if (zoom) applyZoomTo(entry.view);
      load(entry).then(function () {
        entry.fresh = false;
        setTimeout(function () { next(at + 1); }, 0);
      });
    })(0);
    if (zoom) fetchZoom(zoom);
    if (applying) watchApply(applying);
    applying = null;
  }

  function defaultXTitle(entry) {
    var kind = entry.shape.split("-")[1];
    return { step: "step", time: "seconds since start", wall: "time", metric: "x" }[kind] || "x";
  }

  // A control change is "drawn" once every chart on screen shows the new view; the page keeps
  // how long that took from the input (tests and the benchmark read stats.apply).
  function watchApply(record) {
    var deadline = window.performance.now() + 20000;
    (function check() {
      var height = window.innerHeight, waiting = false;
      views.forEach(function (entry) {
        var box = entry.panel.getBoundingClientRect();
        if (box.bottom > 0 && box.top < height && entry.fresh) waiting = true;
      });
      if (waiting && window.performance.now() < deadline) { window.requestAnimationFrame(check); return; }
      stats.apply.push({ ms: window.performance.now() - record.started, complete: !waiting });
      if (stats.apply.length > 50) stats.apply.shift();
    })();
  }

  // What recent live updates ({charts, points, ms}), zooms ({first, all}: ms until the first
  // and the last chart re-rendered) and control changes ({ms}: input to every chart on screen
  // redrawn) cost; tests and benchmarks read it.
  var stats = { delta: [], zoom: [], apply: [] };

  function applyDelta(delta) {
    zoomMemo = {};
    var started = window.performance.now(), charts = 0, points = 0, runs = [];
    Object.keys(delta || {}).forEach(function (pid) {
      var entry = views.get(pid);
      if (!entry) return;
      // One changeset per dataset for all of the chart's runs: Vega then re-runs the chart once.
      var cut = {}, cutting = false, out = { pts: [], band: [], last: [], bad: [], hov: [] };
      delta[pid].forEach(function (d) {
        var before = entry.series.filter(function (s) { return s.r === d.r; })[0];
        var is = before ? (before.i || before.x) : [];
        if (is.length && is[is.length - 1] >= d.k) { cut[d.r] = d.k; cutting = true; }
        mergeSeries(entry.series, d);
        if (entry.zoomed) mergeSeries(entry.zoomed.series, d);
        if (entry.full) mergeSeries(entry.full.series, d);
        points += d.x.length;
        addRows(out, d, entry);
      });
      updateBadge(entry, shown(entry));
      renderLegend(entry);
      if (!entry.view) return;
      var view = entry.view, vega = window.vega;
      if (entry.kind !== "line") {
        view.data("pts", datasets(entry.series).pts);
      } else {
        var changed = {};
        delta[pid].forEach(function (d) { changed[d.r] = true; });
        var stale = function (t) { return t.r in cut && t.i >= cut[t.r]; };
        var ends = shown(entry).filter(function (s) { return changed[s.r] && s.x.length; }).map(lastRow);
        view.change("pts", cutting ? vega.changeset().remove(stale).insert(out.pts)
                                   : vega.changeset().insert(out.pts));
        // A band sent whole (the grey band of many runs) replaces its rows of the band layer.
        if (cutting || out.band.length) {
          view.change("band", vega.changeset().remove(cutting ? stale : []).insert(out.band));
        }
        view.change("last", vega.changeset().remove(function (t) { return changed[t.r]; }).insert(ends));
        if (out.bad.length) view.change("bad", vega.changeset().insert(out.bad));
        setExtents(entry, view);
      }
      charts += 1;
      runs.push(view.runAsync());
    });
    Promise.all(runs).then(function () {
      stats.delta.push({ charts: charts, points: points, ms: window.performance.now() - started });
      if (stats.delta.length > 50) stats.delta.shift();
    });
  }

  // ---- hover readout, crosshair and legend ---------------------------------------------
  // Under the pointer: a readout listing every run's value at that x (the nearest logged
  // point of each line, sorted by value, largest first), a marker on each line and a vertical
  // rule at that x on every chart on screen with the same x axis. Keyboard: a focused chart
  // moves the same crosshair with ←/→ (Home/End). Run names are text (textContent), never markup.

  var readout = null, crossed = [], hoverFrame = null, hoverArgs = null;
  var READOUT_ROWS = 20;

  function readoutBox() {
    if (!readout) {
      readout = document.createElement("div");
      readout.id = "readout";
      readout.className = "readout";
      readout.hidden = true;
      document.body.appendChild(readout);
    }
    return readout;
  }

  function xKind(entry) { return entry.shape.split("-")[1]; }

  function nearestIndex(xs, x) {
    var lo = 0, hi = xs.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function isSorted(s) {
    if (s.sorted === undefined) {
      s.sorted = true;
      for (var k = 1; k < s.x.length; k++) if (s.x[k] < s.x[k - 1]) { s.sorted = false; break; }
    }
    return s.sorted;
  }

  // Each line's logged point nearest to x, if x lies within that line's range (give or take
  // `slack` in x units): a run that ended earlier has no value there.
  function pointsAt(entry, x, slack) {
    var out = [];
    shown(entry).forEach(function (s) {
      var xs = s.x, n = xs.length, j = -1;
      if (!n) return;
      if (isSorted(s)) {
        if (x < xs[0] - slack || x > xs[n - 1] + slack) return;
        j = Math.min(n - 1, nearestIndex(xs, x));
        if (j > 0 && Math.abs(xs[j - 1] - x) <= Math.abs(xs[j] - x)) j -= 1;
      } else {
        var best = Infinity;
        for (var k = 0; k < n; k++) { var d = Math.abs(xs[k] - x); if (d < best) { best = d; j = k; } }
        if (best > slack) return;
      }
      out.push({ s: s, j: j, v: s.s ? s.s[j] : s.y[j] });
    });
    return out;
  }

  function slackOf(view, pixels) {
    var sx = view.scale("x");
    return Math.abs(+sx.invert(pixels) - +sx.invert(0));
  }

  function mark(entry, x) {
    var view = entry.view;
    if (!view || entry.kind !== "line") return [];
    var found = x === null ? [] : pointsAt(entry, x, slackOf(view, 12));
    var rows = found.map(function (p) {
      var s = p.s, row = { r: s.r, n: s.n, c: s.c, x: s.x[p.j], y: s.y[p.j] };
      if (s.s) row.s = s.s[p.j];
      return row;
    });
    view.data("hov", rows).data("cross", x === null ? [] : [{ x: x }]).runAsync();
    return found;
  }

  // The rule and markers at x on the source chart and every chart on screen sharing its x axis.
  function crossAt(source, x) {
    var kind = xKind(source), now = [];
    views.forEach(function (entry) {
      if (!entry.view || entry.kind !== "line" || xKind(entry) !== kind) return;
      if (entry !== source && !entry.onScreen) return;
      now.push(entry);
    });
    crossed.forEach(function (entry) { if (now.indexOf(entry) === -1 && entry.view) mark(entry, null); });
    crossed = now;
    var mine = [];
    now.forEach(function (entry) { var found = mark(entry, x); if (entry === source) mine = found; });
    return mine;
  }

  function clearCross() {
    crossed.forEach(function (entry) { if (entry.view) mark(entry, null); });
    crossed = [];
    readoutBox().hidden = true;
  }

  function formatNumber(v) {
    if (typeof v !== "number" || !isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(4);
    return String(+v.toPrecision(6));
  }

  function formatX(entry, x) {
    if (xKind(entry) === "wall") return new Date(x).toLocaleString();
    return formatNumber(x);
  }

  function xLabel(entry) {
    return xKind(entry) === "metric" && xTitleOverride ? xTitleOverride : defaultXTitle(entry);
  }

  function readoutRow(box, colour, name, value, extra) {
    var row = document.createElement("div");
    row.className = "readout-row";
    var swatch = document.createElement("span");
    swatch.className = "swatch";
    if (colour) swatch.style.background = colour;
    var label = document.createElement("span");
    label.className = "readout-name";
    label.textContent = name;
    var number = document.createElement("span");
    number.className = "readout-value";
    number.textContent = value;
    row.appendChild(swatch);
    row.appendChild(label);
    row.appendChild(number);
    if (extra) {
      var more = document.createElement("span");
      more.className = "readout-extra";
      more.textContent = extra;
      row.appendChild(more);
    }
    box.appendChild(row);
  }

  function placeReadout(box, x, y) {
    box.hidden = false;
    var width = box.offsetWidth, height = box.offsetHeight;
    var left = x + 16, top = y + 16;
    if (left + width > window.innerWidth - 4) left = Math.max(4, x - width - 16);
    if (top + height > window.innerHeight - 4) top = Math.max(4, y - height - 16);
    box.style.left = left + "px";
    box.style.top = top + "px";
  }

  function showValues(entry, x, found, at) {
    var box = readoutBox();
    box.textContent = "";
    if (!found.length) { box.hidden = true; return; }
    var head = document.createElement("div");
    head.className = "readout-x";
    head.textContent = xLabel(entry) + " " + formatX(entry, x);
    box.appendChild(head);
    found.sort(function (a, b) { return b.v - a.v; });
    found.slice(0, READOUT_ROWS).forEach(function (p) {
      var s = p.s, name = s.n + (s.d ? " · " + s.d : "");
      var extra = s.s ? "raw " + formatNumber(s.y[p.j]) : "";
      if (s.x[p.j] !== x) extra = (extra ? extra + ", " : "") + "at " + formatX(entry, s.x[p.j]);
      readoutRow(box, s.c, name, formatNumber(p.v), extra);
    });
    if (found.length > READOUT_ROWS) {
      var more = document.createElement("div");
      more.className = "readout-more";
      more.textContent = "… and " + (found.length - READOUT_ROWS) + " more runs";
      box.appendChild(more);
    }
    placeReadout(box, at.x, at.y);
  }

  function showNotes(title, notes, at) {
    var box = readoutBox();
    box.textContent = "";
    var head = document.createElement("div");
    head.className = "readout-x";
    head.textContent = title;
    box.appendChild(head);
    notes.forEach(function (n) { readoutRow(box, n.c, n.name, n.value, n.extra); });
    placeReadout(box, at.x, at.y);
  }

  // A NaN/±Inf marker on the x-axis line within a few pixels of the pointer, if any.
  function nearMarker(entry, sx, px, py, height) {
    if (py < height - 14 || py > height + 4) return null;
    var best = null, bestD = 6;
    shown(entry).forEach(function (s) {
      Object.keys(MARKS).forEach(function (name) {
        (s[name] || []).forEach(function (x) {
          var d = Math.abs(sx(x) - px);
          if (d <= bestD) { bestD = d; best = { s: s, x: x, v: MARKS[name] }; }
        });
      });
    });
    return best;
  }

  // An alert's triangle at the top edge of the plot within a few pixels of the pointer.
  function nearAlert(sx, px, py, width) {
    if (!alertsShown || py < -10 || py > 10 || px < -6 || px > width + 6) return null;
    var best = null, bestD = 7;
    alerts.forEach(function (a) {
      var d = Math.abs(sx(a.x) - px);
      if (d <= bestD) { bestD = d; best = a; }
    });
    return best;
  }

  function hover(entry, event) {
    var view = entry.view;
    if (!view) return;
    var canvas = view.container().querySelector("canvas");
    if (!canvas) return;
    var box = canvas.getBoundingClientRect(), origin = view.origin();
    var px = event.clientX - box.left - origin[0], py = event.clientY - box.top - origin[1];
    var sx = view.scale("x");
    if (!sx) return;
    var at = { x: event.clientX, y: event.clientY };
    var flagged = entry.alerts ? nearAlert(sx, px, py, view.width()) : null;
    if (flagged) {
      // Every alert at that step. Titles and run names are whatever was logged: text only.
      clearCross();
      showNotes("alerts at step " + flagged.x, alerts.filter(function (a) { return a.x === flagged.x; })
        .map(function (a) { return { c: a.c, name: a.n, value: a.level, extra: a.title }; }), at);
      return;
    }
    var inside = px >= 0 && py >= 0 && px <= view.width() && py <= view.height();
    var marker = inside ? nearMarker(entry, sx, px, py, view.height()) : null;
    if (marker) {
      clearCross();
      showNotes(xLabel(entry) + " " + formatX(entry, marker.x),
                [{ c: marker.s.c, name: marker.s.n + (marker.s.d ? " · " + marker.s.d : ""), value: marker.v }], at);
      return;
    }
    if (!inside) { clearCross(); return; }
    var x = +sx.invert(px);
    // The crosshair sits on the logged x nearest to the pointer.
    var near = pointsAt(entry, x, slackOf(view, 12)), snapped = x, bestD = Infinity;
    near.forEach(function (p) { var d = Math.abs(p.s.x[p.j] - x); if (d < bestD) { bestD = d; snapped = p.s.x[p.j]; } });
    showValues(entry, snapped, crossAt(entry, snapped), at);
  }

  function bindHover(entry, target) {
    target.addEventListener("pointermove", function (event) {
      hoverArgs = [entry, event];
      if (hoverFrame === null) {
        hoverFrame = window.requestAnimationFrame(function () {
          hoverFrame = null;
          if (hoverArgs) hover(hoverArgs[0], hoverArgs[1]);
        });
      }
    });
    target.addEventListener("pointerleave", function () {
      hoverArgs = null;
      clearCross();
    });
    // Keyboard: the focused chart's crosshair walks its longest line's points.
    target.tabIndex = 0;
    target.addEventListener("keydown", function (event) {
      var keys = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity };
      if (!(event.key in keys) || !entry.view) return;
      event.preventDefault();
      var longest = shown(entry).reduce(function (a, s) { return !a || s.x.length > a.x.length ? s : a; }, null);
      if (!longest || !longest.x.length) return;
      var n = longest.x.length, step = keys[event.key];
      var at = entry.keyAt === undefined ? n - 1 : entry.keyAt;
      at = step === -Infinity ? 0 : step === Infinity ? n - 1 : Math.max(0, Math.min(n - 1, at + step));
      entry.keyAt = at;
      var x = longest.x[at], rect = target.getBoundingClientRect();
      showValues(entry, x, crossAt(entry, x), { x: rect.left + rect.width / 2, y: rect.top + 10 });
    });
    target.addEventListener("blur", function () { entry.keyAt = undefined; clearCross(); });
  }

  // The legend: one button per run (click: only that run, again: all; hover or focus: that
  // run stands out), and for merged device charts the dash of each device.
  var LEGEND_ITEMS = 12;

  function baseSeries(entry) {
    return previewed(entry, entry.full ? entry.full.series : entry.zoomed ? entry.zoomed.series
                                                                       : entry.series);
  }

  function renderLegend(entry) {
    var list = entry.panel.querySelector(".legend");
    if (!list) return;
    var runs = [], byRun = {}, devices = [];
    baseSeries(entry).forEach(function (s) {
      var key = runOf(s);
      if (!byRun[key]) { byRun[key] = true; runs.push({ key: key, name: s.n, c: s.c }); }
      if (s.d && devices.indexOf(s.d) === -1) devices.push(s.d);
    });
    var signature = JSON.stringify([runs, devices, entry.isolated, entry.legendAll]);
    if (signature === entry.legendSignature) return;
    entry.legendSignature = signature;
    list.textContent = "";
    list.hidden = !runs.length;
    var limit = entry.legendAll ? runs.length : LEGEND_ITEMS;
    runs.slice(0, limit).forEach(function (run) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "legend-item";
      button.dataset.run = run.key;
      button.setAttribute("aria-pressed", entry.isolated === run.key ? "true" : "false");
      button.title = entry.isolated === run.key ? "Show every run again" : "Show only this run";
      if (entry.isolated && entry.isolated !== run.key) button.classList.add("muted-item");
      var swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = run.c;
      var name = document.createElement("span");
      name.className = "legend-name";
      name.textContent = run.name;
      button.appendChild(swatch);
      button.appendChild(name);
      item.appendChild(button);
      list.appendChild(item);
    });
    if (runs.length > limit) {
      var more = document.createElement("li");
      var expand = document.createElement("button");
      expand.type = "button";
      expand.className = "legend-more";
      expand.textContent = "+" + (runs.length - limit) + " more";
      more.appendChild(expand);
      list.appendChild(more);
    }
    devices.forEach(function (device) {
      var item = document.createElement("li");
      item.className = "legend-device";
      var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("width", "26");
      svg.setAttribute("height", "8");
      svg.setAttribute("aria-hidden", "true");
      var line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", "0"); line.setAttribute("x2", "26");
      line.setAttribute("y1", "4"); line.setAttribute("y2", "4");
      line.setAttribute("stroke-dasharray", ((entry.dashes || {})[device] || [1, 0]).join(" "));
      svg.appendChild(line);
      var label = document.createElement("span");
      label.textContent = device + " (dash)";
      item.appendChild(svg);
      item.appendChild(label);
      list.appendChild(item);
    });
  }

  function highlight(entry, key) {
    var view = entry.view;
    if (!view || entry.kind !== "line") return;
    var rows = [];
    if (key !== null) {
      var data = datasets(shown(entry).filter(function (s) { return runOf(s) === key; }), null);
      rows = data.pts;
    }
    view.signal("dim", key === null ? 1 : 0.2).data("hil", rows).runAsync();
  }

  function legendEntry(button) {
    var panel = button.closest(".panel");
    return panel && views.get(panel.id);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".legend-item, .legend-more");
    var entry = button && legendEntry(button);
    if (!entry) return;
    if (button.classList.contains("legend-more")) { entry.legendAll = true; renderLegend(entry); return; }
    entry.isolated = entry.isolated === button.dataset.run ? null : button.dataset.run;
    renderLegend(entry);
    if (entry.view) { load(entry); highlight(entry, null); }
  });
  function legendHover(event, on) {
    var button = event.target.closest && event.target.closest(".legend-item");
    var entry = button && legendEntry(button);
    if (entry) highlight(entry, on ? button.dataset.run : null);
  }
  document.addEventListener("mouseover", function (event) { legendHover(event, true); });
  document.addEventListener("mouseout", function (event) { legendHover(event, false); });
  document.addEventListener("focusin", function (event) { legendHover(event, true); });
  document.addEventListener("focusout", function (event) { legendHover(event, false); });

  // ---- previews: a control's first visible change, drawn before the server answers -----------
  // controls.js says what the form now asks for (runs ticked and unticked, the smoothing), and
  // every drawn chart shows it at once from the data the page holds: an unticked run's lines
  // go, a ticked run this panel showed before (same shape) comes back, and a new smoothing
  // re-smooths the loaded points (smoothing.js, the server's formula). The server's answer then
  // replaces the data; while later changes are still on their way, the preview applies to it
  // too, and it ends with the last answer (controls.js calls endPreview before that swap).

  var preview = null; // {hidden: {run: true}, ticked: {run: true}, smoothing, turn}
  var previewKey = "null", previewTurn = 0; // a newer preview or an answer stops older redraws
  var dataSmoothing = { method: "sma", amount: 0 }; // what the panels' data was smoothed with
  var runCache = new Map(); // panel id -> {shape, runs: {run: {series, smoothing}}}
  var smoothMemo = new WeakMap(); // series -> {key, out}

  function sameSmoothing(a, b) { return a.amount === b.amount && (a.amount === 0 || a.method === b.method); }

  // Series s smoothed as `wanted` on the line its chart's shape draws: s when the spec draws a
  // smoothed line over the raw one, else y (the preview of smoothing turned on).
  function resmoothed(s, wanted, smoothedShape) {
    var key = wanted.method + wanted.amount + smoothedShape, memo = smoothMemo.get(s);
    if (memo && memo.key === key) return memo.out;
    var values = window.trackioSmoothing.smooth(s, wanted.method, wanted.amount), out = s;
    if (smoothedShape) out = Object.assign({}, s, { s: values || s.y });
    else if (values) out = Object.assign({}, s, { y: values });
    smoothMemo.set(s, { key: key, out: out });
    return out;
  }

  // The series a chart shows under the preview (the list itself when it changes nothing there).
  function previewed(entry, list) {
    if (!preview) return list;
    if (entry.previewFrom === list && entry.previewTurn === preview.turn) return entry.previewList;
    var target = preview.smoothing || dataSmoothing, has = {}, changed = false;
    var smoothable = entry.kind === "line" && !entry.panel.closest(".section.system");
    var smoothedShape = /-s$/.test(entry.shape);
    function fit(s, from) {
      if (!smoothable || !window.trackioSmoothing || sameSmoothing(target, from)) return s;
      changed = true;
      return resmoothed(s, target, smoothedShape);
    }
    var out = [];
    list.forEach(function (s) {
      var run = runOf(s);
      if (preview.hidden[run]) { changed = true; return; }
      has[run] = true;
      out.push(fit(s, dataSmoothing));
    });
    var kept = runCache.get(entry.panel.id);
    if (kept && kept.shape === entry.shape) {
      Object.keys(preview.ticked).forEach(function (run) {
        var again = kept.runs[run];
        if (has[run] || !again) return;
        changed = true;
        again.series.forEach(function (s) { out.push(fit(s, again.smoothing)); });
      });
    }
    entry.previewFrom = list;
    entry.previewTurn = preview.turn;
    entry.previewList = changed ? out : list;
    return entry.previewList;
  }

  // Keep each panel's runs, so ticking a run back shows its lines before the server answers.
  function remember(entry) {
    var kept = runCache.get(entry.panel.id), fresh = {};
    if (!kept || kept.shape !== entry.shape) {
      kept = { shape: entry.shape, runs: {} };
      runCache.set(entry.panel.id, kept);
    }
    entry.series.forEach(function (s) {
      var run = runOf(s);
      if (!fresh[run]) { fresh[run] = true; kept.runs[run] = { series: [], smoothing: dataSmoothing }; }
      kept.runs[run].series.push(s);
    });
  }

  // Show what the form asks for now: {hidden, ticked, smoothing: {method, amount}}, or null
  // to show the data as it is. Charts on screen change together (one paint), then the others
  // one per task.
  function setPreview(state) {
    var key = JSON.stringify(state || null);
    if (key === previewKey) return;
    previewKey = key;
    previewTurn += 1;
    preview = state ? { hidden: state.hidden || {}, ticked: state.ticked || {},
                        smoothing: state.smoothing || null, turn: previewTurn } : null;
    var turn = previewTurn, first = [], later = [];
    views.forEach(function (entry) {
      if (!entry.view) { renderLegend(entry); return; }
      (entry.onScreen ? first : later).push(entry); // the observer's word: no layout here
    });
    function due(entry) { return views.get(entry.panel.id) === entry && entry.loaded !== shown(entry); }
    Promise.all(first.filter(due).map(patch)).then(function next() {
      if (turn !== previewTurn) return;
      var entry = later.shift();
      while (entry && !due(entry)) entry = later.shift();
      if (entry) patch(entry).then(function () { setTimeout(next, 0); });
    });
  }

  // Bring a drawn line chart to what it shows now by removing and inserting whole lines, with
  // the axes left as they are until the server's answer: a fraction of reloading it.
  function patch(entry) {
    var view = entry.view, target = shown(entry), before = entry.loaded;
    if (entry.kind !== "line" || !before) return load(entry);
    var keep = new Set(target), had = new Set(before), gone = {}, now = {}, cut = {};
    var out = { pts: [], band: [], last: [], bad: [], hov: [] };
    target.forEach(function (s) { now[s.r] = true; });
    // A line that stays (re-smoothed) keeps its band and markers: only its points change.
    before.forEach(function (s) { if (!keep.has(s)) gone[s.r] = now[s.r] ? "points" : "all"; });
    // Dashes are the chart's own (one per device, kept).
    var rowsOf = { dashes: entry.dashes || (entry.dashes = {}) };
    target.forEach(function (s) {
      if (had.has(s)) return;
      if (gone[s.r] === "points") addRows({ pts: out.pts, band: [], last: out.last, bad: [] }, s, rowsOf);
      else addRows(out, s, rowsOf);
    });
    entry.loaded = target;
    Object.keys(gone).forEach(function (r) { cut.pts = cut.last = true; if (gone[r] === "all") cut.band = cut.bad = true; });
    // Every line's points new (a smoothing change): replacing the dataset costs Vega less than
    // removing each old row.
    var every = target.every(function (s) { return !had.has(s); });
    ["pts", "band", "last", "bad"].forEach(function (name) {
      if (!cut[name] && !out[name].length) return;
      if (every && (name === "pts" || name === "last")) { view.data(name, out[name]); return; }
      var change = window.vega.changeset(), all = name === "band" || name === "bad";
      if (cut[name]) change.remove(function (t) { return all ? gone[t.r] === "all" : t.r in gone; });
      view.change(name, change.insert(out[name]));
    });
    updateBadge(entry, target);
    renderLegend(entry);
    return view.runAsync();
  }

  // The server's answer is here: its data is what the form asks for (no redraw: the answer's
  // own swap gives the charts their data).
  function endPreview() {
    preview = null;
    previewKey = "null";
    previewTurn += 1;
  }

  // ---- shared zoom --------------------------------------------------------------------
  // A zoom moves every line chart's x domain at once (a signal: no per-row work), then asks
  // the server once for the zoomed range at full resolution; reset returns to the overview.

  var zoomMemo = {}; // range key -> answer, until the data changes (a delta or a redraw)
  var zoomWanted = null; // the range whose answer is awaited (or paused by Retry-After)

  function applyZoomTo(view) {
    view.signal("xmin", zoom ? zoom[0] : null).signal("xmax", zoom ? zoom[1] : null);
  }

  // Charts on screen first, one per task, so the one in view answers at once and the page
  // stays responsive while the others follow.
  function onScreenFirst() {
    var list = [], later = [], height = window.innerHeight;
    views.forEach(function (entry) {
      if (!entry.view || entry.kind !== "line") return;
      var box = entry.panel.getBoundingClientRect();
      (box.bottom > 0 && box.top < height ? list : later).push(entry);
    });
    return list.concat(later);
  }

  var zoomGeneration = 0;

  function eachInTurn(entries, update, done) {
    var generation = ++zoomGeneration, started = window.performance.now(), first = null;
    (function next(at) {
      if (generation !== zoomGeneration) return;
      if (at >= entries.length) { if (done) done(first, window.performance.now() - started); return; }
      update(entries[at]);
      entries[at].view.runAsync().then(function () {
        if (first === null) first = window.performance.now() - started;
        setTimeout(function () { next(at + 1); }, 0);
      });
    })(0);
  }

  // Bring every chart to the current zoom and to the data it should show (overview or range).
  function rezoom() {
    eachInTurn(onScreenFirst(), function (entry) {
      applyZoomTo(entry.view);
      if (entry.loaded !== shown(entry)) load(entry);
    }, function (first, all) {
      stats.zoom.push({ first: first, all: all });
      if (stats.zoom.length > 50) stats.zoom.shift();
    });
  }

  function setZoom(range) {
    zoom = range;
    if (!range) views.forEach(function (entry) { entry.zoomed = null; });
    rezoom();
    var reset = document.getElementById("reset-zoom");
    if (reset) reset.hidden = !zoom;
    var url = new URL(window.location.href);
    if (zoom) { url.searchParams.set("xmin", zoom[0]); url.searchParams.set("xmax", zoom[1]); }
    else { url.searchParams.delete("xmin"); url.searchParams.delete("xmax"); }
    window.history.replaceState(null, "", url.toString());
    zoomWanted = range;
    if (range) fetchZoom(range);
    document.dispatchEvent(new CustomEvent("trackio:zoom", { detail: { range: range } }));
  }

  function zoomKey(range) { return range[0] + ":" + range[1]; }

  function fetchZoom(range) {
    var panels = document.getElementById("panels");
    var base = panels && panels.dataset.zoomUrl;
    if (!base || !window.fetch) return;
    if (zoomMemo[zoomKey(range)]) { applyZoomData(range, zoomMemo[zoomKey(range)]); return; }
    if (poll.paused()) return; // resumed on the trackio:resume event
    var url = new URL(base, window.location.href);
    url.searchParams.set("xmin", range[0]);
    url.searchParams.set("xmax", range[1]);
    window.fetch(url.toString(), { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 429 || response.status === 503) {
          // The same pause as the poller's: nothing more is sent until it ends.
          poll.onStatus(response.status, response.headers.get("Retry-After"));
          return null;
        }
        if (!response.ok) return null;
        return response.json();
      })
      .then(function (answer) {
        if (!answer) return;
        zoomMemo[zoomKey(range)] = answer;
        applyZoomData(range, answer);
      })
      .catch(function () { /* network trouble: the overview stays, zoomed */ });
  }

  function applyZoomData(range, answer) {
    if (!zoom || zoomKey(zoom) !== zoomKey(range)) return; // zoomed elsewhere meanwhile
    zoomWanted = null;
    Object.keys(answer.panels || {}).forEach(function (pid) {
      var entry = views.get(pid);
      if (entry && entry.kind === "line") entry.zoomed = { range: range, series: answer.panels[pid] };
    });
    rezoom();
  }

  function resumeZoom() {
    if (zoomWanted && zoom && zoomKey(zoom) === zoomKey(zoomWanted)) fetchZoom(zoomWanted);
  }
  document.addEventListener("trackio:resume", resumeZoom);

  // Drag across a chart to zoom its x range (all charts follow); double-click to reset.
  function bindBrush(entry, target) {
    target.addEventListener("pointerdown", function (event) {
      var view = entry.view, canvas = target.querySelector("canvas");
      if (event.button !== 0 || !view || event.target !== canvas) return;
      var box = canvas.getBoundingClientRect(), origin = view.origin();
      var left = box.left + origin[0], width = view.width();
      var start = event.clientX - left, y = event.clientY - box.top - origin[1];
      if (start < 0 || start > width || y < 0 || y > view.height()) return;
      var band = document.createElement("div");
      band.className = "brush";
      band.style.top = (canvas.offsetTop + origin[1]) + "px";
      band.style.height = view.height() + "px";
      target.appendChild(band);
      var end = start;
      function place() {
        var a = Math.min(start, end), b = Math.max(start, end);
        band.style.left = (canvas.offsetLeft + origin[0] + a) + "px";
        band.style.width = (b - a) + "px";
      }
      function move(e) { end = Math.max(0, Math.min(width, e.clientX - left)); place(); }
      function up() {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        band.remove();
        if (Math.abs(end - start) < 3) return;
        var sx = view.scale("x");
        var lo = +sx.invert(Math.min(start, end)), hi = +sx.invert(Math.max(start, end));
        if (hi > lo) setZoom(snapRange(lo, hi));
      }
      place();
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
      event.preventDefault();
    });
    target.addEventListener("dblclick", function () { if (zoom) setZoom(null); });
  }

  // Round a brushed range to 3 significant digits of its width, so the same gesture gives the
  // same URL (and the server's cache entry) and the address bar stays short.
  function snapRange(lo, hi) {
    var unit = Math.pow(10, Math.floor(Math.log10(hi - lo)) - 2);
    var a = Math.floor(lo / unit + 1e-9) * unit, b = Math.ceil(hi / unit - 1e-9) * unit;
    return [+a.toPrecision(12), +b.toPrecision(12)];
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  // After a refresh: new panels (full redraw) or per-panel changesets.
  // A refresh swaps in new #panels, #delta or #alerts elements; each new element is handled
  // exactly once (htmx fires swap events once per swapped element, so compare identities).
  var seen = { panels: null, delta: null, alerts: null, dashboard: null };

  function afterRefresh() {
    var dashboard = document.getElementById("dashboard");
    if (dashboard && dashboard !== seen.dashboard) { seen.dashboard = dashboard; readZoomLink(dashboard); }
    var panels = document.getElementById("panels");
    if (panels && panels !== seen.panels) { seen.panels = panels; setupPanels(panels); }
    var delta = document.getElementById("delta");
    if (delta && delta !== seen.delta) { seen.delta = delta; applyDelta(readJSON(delta)); }
    var alertEl = document.getElementById("alerts");
    if (alertEl && alertEl !== seen.alerts) { seen.alerts = alertEl; applyAlerts(readJSON(alertEl) || []); }
  }

  // New alerts (a refresh swapped in the list): every step chart shows the new markers.
  function applyAlerts(list) {
    alerts = list;
    var toggle = document.getElementById("alerts-toggle");
    if (toggle) toggle.hidden = !alerts.length;
    views.forEach(function (entry) {
      if (entry.view && entry.alerts) entry.view.data("alrt", alertsShown ? alerts : []).runAsync();
    });
  }
  document.addEventListener("htmx:afterSettle", afterRefresh);

  // The zoom a link (or back/forward) asks for: xmin/xmax on the dashboard.
  function readZoomLink(dashboard) {
    var linked = null;
    if (dashboard.dataset.xmin !== "" && dashboard.dataset.xmax !== "") {
      linked = [parseFloat(dashboard.dataset.xmin), parseFloat(dashboard.dataset.xmax)];
      if (!(linked[1] > linked[0])) linked = null;
    }
    zoom = linked;
    if (!linked) views.forEach(function (entry) { entry.zoomed = null; });
    var reset = document.getElementById("reset-zoom");
    if (reset) reset.hidden = !zoom;
    // Opening a zoomed link is the user's action: ask for its full resolution.
    zoomWanted = linked;
    return linked;
  }

  // ---- purely visual settings: theme, plots per row, alert markers ----------------------

  function redrawAll() {
    axisRoom = {};
    views.forEach(function (entry) {
      if (entry.view) entry.view.finalize();
      entry.view = null;
      entry.pending = false;
      entry.fresh = true;
      entry.legendSignature = null;
      entry.panel.classList.remove("drawn", "empty");
      var chart = entry.panel.querySelector(".chart");
      if (chart) chart.textContent = "";
    });
    var height = window.innerHeight;
    views.forEach(function (entry) {
      var box = entry.panel.getBoundingClientRect();
      if (box.bottom > -200 && box.top < height + 200) embed(entry.panel);
    });
    pump();
  }
  document.addEventListener("trackio:theme", redrawAll);

  function setPerRow(value) {
    document.querySelectorAll("#panels .grid").forEach(function (grid) {
      grid.classList.toggle("per-row", !!value);
      if (value) grid.style.setProperty("--per-row", value); else grid.style.removeProperty("--per-row");
    });
    window.dispatchEvent(new Event("resize"));
  }

  document.addEventListener("trackio:visual", function (event) {
    if (event.detail.name === "cols") setPerRow(event.detail.value);
  });

  function setAlertsShown(on, remember) {
    alertsShown = on;
    applyAlerts(alerts);
    if (!remember) return;
    var url = new URL(window.location.href);
    if (on) url.searchParams.delete("alerts"); else url.searchParams.set("alerts", "hidden");
    window.history.replaceState(window.history.state, "", url.toString());
  }

  document.addEventListener("change", function (event) {
    if (event.target.id === "show-alerts") setAlertsShown(event.target.checked, true);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var dashboard = document.getElementById("dashboard");
    var linked = dashboard ? readZoomLink(dashboard) : null;
    seen.dashboard = dashboard;
    var resetButton = document.getElementById("reset-zoom");
    if (resetButton) resetButton.addEventListener("click", function () { setZoom(null); });
    if (new URLSearchParams(window.location.search).get("alerts") === "hidden") {
      var box = document.getElementById("show-alerts");
      if (box) box.checked = false;
      alertsShown = false;
    }
    setupPanels(document);
    if (linked) fetchZoom(linked);
    seen.panels = document.getElementById("panels");
    seen.delta = document.getElementById("delta");
    seen.alerts = document.getElementById("alerts");
  });

  window.trackioFlask = {
    views: views, zoom: function () { return zoom; }, setZoom: setZoom,
    shown: shown, stats: stats, alerts: function () { return alerts; }, vegaSpec: vegaSpec,
    datasets: datasets, titles: titles, theme: pageTheme, load: load, runOf: runOf,
    embed: embed, renderLegend: renderLegend, preview: setPreview, endPreview: endPreview
  };
})();
