// trackio_flask page glue: draw panels with vega-embed (Vega specs compiled on the server), apply
// refresh data to existing views, share x-zoom across panels (re-queried at full resolution),
// mark alerts on step charts, and the per-panel tools (full screen, CSV/PNG/SVG downloads)
// (polling is guarded by poll.js, loaded before this file).
// No inline scripts and no eval: the page runs under CSP script-src 'self'.
(function () {
  "use strict";

  var poll = window.trackioPoll;
  var views = new Map(); // panel id -> {view, series, zoomed, shape, kind, panel}
  var specs = {};
  var zoom = null; // [lo, hi] or null
  var observer = null;
  var alerts = []; // alert markers of the selected runs: {r, n, c, x (step), title, level}

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
    if (s.lo) {
      // New points are raw: their own min and max.
      merged.lo = s.lo.slice(0, cut).concat(d.y);
      merged.hi = s.hi.slice(0, cut).concat(d.y);
    }
    // Rows are numbered densely, so rows k.. of the old total are the ones replaced.
    if (s.t) merged.t = s.t - (is.length ? Math.max(0, is[is.length - 1] - d.k + 1) : 0) + d.x.length;
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

  function shown(entry) { return entry.zoomed ? entry.zoomed.series : entry.series; }

  function bandOpacity(series) {
    // Many runs: fainter bands, so overlapping ranges stay readable.
    return Math.max(0.05, 0.22 * Math.sqrt(4 / Math.max(4, series.length)));
  }

  // The x and y domains: computed here from the columns once per change (see charts.py).
  function extents(series, range) {
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
    if (!(y1 >= y0)) { y0 = 0; y1 = 1; }
    if (y1 === y0) { var pad = Math.abs(y0) * 0.05 || 0.5; y0 -= pad; y1 += pad; }
    return { x: [x0, x1], y: [y0, y1] };
  }

  function setExtents(entry, view) {
    var ext = extents(shown(entry), entry.zoomed ? zoom : null);
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
    if (entry.alerts) data.alrt = alerts;
    return data;
  }

  // Replace a drawn chart's data (zoom in or out).
  function load(entry) {
    var data = prepare(entry), view = entry.view;
    if (entry.kind === "line") {
      setExtents(entry, view);
      view.signal("bandop", bandOpacity(shown(entry)));
      ["pts", "band", "last", "bad", "hov", "alrt"].forEach(function (name) {
        if (data[name]) view.data(name, data[name]);
      });
    } else {
      view.data("pts", data.pts);
    }
  }

  // The shared spec with this panel's rows in it, so the first run already has its data
  // (an empty first run would only compute empty extents, and warn about them).
  function specWithData(spec, entry, room) {
    var data = prepare(entry), copy = Object.assign({}, spec);
    if (room !== null) copy.autosize = { type: "pad", resize: true };
    var ext = entry.kind === "line" ? setExtents(entry, null) : null;
    copy.data = (spec.data || []).map(function (d) {
      return data[d.name] ? Object.assign({}, d, { values: data[d.name] }) : d;
    });
    copy.signals = (spec.signals || []).map(function (sig) {
      if (sig.name === "bandop") return Object.assign({}, sig, { value: bandOpacity(shown(entry)) });
      if (sig.name === "width" && room !== null) {
        // The page resizes these charts itself (see resizeCharts).
        return { name: "width", value: Math.max(10, entry.panel.querySelector(".chart").clientWidth - room) };
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
      if (room === undefined) axisRoom[entry.shape] = Math.max(0, outer - entry.view.width()) + ROOM_SLACK;
      else entry.padded = true;
      if (entry.kind === "line") {
        entry.view.addEventListener("pointermove", function (event) { hoverSoon(entry, event); });
        entry.view.addEventListener("pointerout", function (event) { hover(entry, event, true); });
        bindBrush(entry, target);
      }
      panel.classList.add("drawn");
      if (panel.classList.contains("fullscreen")) fitFullscreen(entry);
    }).catch(function (err) {
      entry.pending = false;
      console.error("chart failed", panel.id, err);
    });
  }

  var resizeCharts = debounce(function () {
    views.forEach(function (entry) {
      var room = axisRoom[entry.shape];
      if (!entry.view || !entry.padded || room === undefined) return;
      var width = Math.max(10, entry.panel.querySelector(".chart").clientWidth - room);
      if (width !== entry.view.width()) entry.view.width(width).runAsync();
    });
  }, 150);
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

  function setupPanels(root) {
    var specEl = document.getElementById("specs");
    if (specEl) specs = readJSON(specEl) || {};
    var alertEl = document.getElementById("alerts");
    alerts = (alertEl && readJSON(alertEl)) || [];
    seen.alerts = alertEl;
    views.forEach(function (entry) { if (entry.view) entry.view.finalize(); });
    views.clear();
    zoomMemo = {};
    if (observer) observer.disconnect();
    observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) { observer.unobserve(e.target); embed(e.target); } });
      pump(); // nothing (more) on screen to draw: the rest when idle
    }, { rootMargin: "200px" }) : null;
    (root || document).querySelectorAll(".panel").forEach(function (panel) {
      var island = panel.querySelector(".panel-data");
      views.set(panel.id, { view: null, series: readJSON(island) || [], zoomed: null, panel: panel,
                            shape: panel.dataset.shape, kind: panel.dataset.kind,
                            alerts: panel.hasAttribute("data-alerts") });
      if (observer) observer.observe(panel); else embed(panel);
    });
  }

  // What recent live updates ({charts, points, ms}) and zooms ({first, all}: ms until the first
  // and the last chart re-rendered) cost; tests and benchmarks read it.
  var stats = { delta: [], zoom: [] };

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
        points += d.x.length;
        addRows(out, d, entry);
      });
      updateBadge(entry, shown(entry));
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
        if (cutting) view.change("band", vega.changeset().remove(stale));
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

  // ---- hover ---------------------------------------------------------------------------
  // The drawn point nearest to the pointer, found by binary search in each run's columns,
  // becomes the one row of `hov` and the tooltip (vega-tooltip: escaped, as Vega's own).

  var hoverFrame = null, hoverEvent = null, hoverEntry = null;
  function hoverSoon(entry, event) {
    hoverEntry = entry; hoverEvent = event;
    if (hoverFrame === null) {
      hoverFrame = window.requestAnimationFrame(function () {
        hoverFrame = null;
        hover(hoverEntry, hoverEvent, false);
      });
    }
  }

  function nearestIndex(xs, x) {
    var lo = 0, hi = xs.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (xs[mid] < x) lo = mid + 1; else hi = mid; }
    return lo;
  }

  function xTitle(entry) {
    var spec = vegaSpec(entry.shape) || {};
    var axis = (spec.axes || []).filter(function (a) { return a.scale === "x" && a.title; })[0];
    return (axis && axis.title) || "x";
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
    if (py < -10 || py > 10 || px < -6 || px > width + 6) return null;
    var best = null, bestD = 7;
    alerts.forEach(function (a) {
      var d = Math.abs(sx(a.x) - px);
      if (d <= bestD) { bestD = d; best = a; }
    });
    return best;
  }

  function hover(entry, event, leave) {
    var view = entry && entry.view;
    if (!view) return;
    if (hoverFrame !== null && leave) { window.cancelAnimationFrame(hoverFrame); hoverFrame = null; }
    var tip = view.tooltip();
    var best = null, marker = null;
    if (!leave) {
      var canvas = view.container() && view.container().querySelector("canvas");
      var box = canvas.getBoundingClientRect(), origin = view.origin();
      var px = event.clientX - box.left - origin[0], py = event.clientY - box.top - origin[1];
      var sx = view.scale("x"), sy = view.scale("y");
      var temporal = !!sx && (sx.type === "time" || sx.type === "utc");
      var inside = px >= 0 && py >= 0 && px <= view.width() && py <= view.height();
      var flagged = sx && entry.alerts ? nearAlert(sx, px, py, view.width()) : null;
      marker = inside && sx && !flagged ? nearMarker(entry, sx, px, py, view.height()) : null;
      if (flagged) {
        // Every alert at that step. Titles and run names are whatever was logged: vega-tooltip
        // escapes values (keys here are ours).
        var said = { step: flagged.x };
        alerts.filter(function (a) { return a.x === flagged.x; }).forEach(function (a, n) {
          said[n ? "alert " + (n + 1) : "alert"] = a.title + " — " + a.n + " (" + a.level + ")";
        });
        if (tip) tip(null, event, null, said);
        marker = flagged;
        inside = false;
      } else if (marker) {
        var note = { run: marker.s.n };
        note[xTitle(entry)] = temporal ? new Date(marker.x).toLocaleString() : marker.x;
        note.value = marker.v;
        if (tip) tip(null, event, null, note);
        inside = false; // the marker's tooltip, no point marked
      } else if (inside && sx && sy) {
        // The nearest point anywhere in the plot, like a Voronoi tiling would give.
        var x = +sx.invert(px), bestD = Infinity;
        shown(entry).forEach(function (s) {
          var xs = s.x, ys = s.s || s.y, n = xs.length;
          if (!n) return;
          if (s.sorted === undefined) {
            s.sorted = true;
            for (var k = 1; k < n; k++) if (xs[k] < xs[k - 1]) { s.sorted = false; break; }
          }
          var sorted = s.sorted;
          var from = 0, to = n;
          if (sorted) { var at = nearestIndex(xs, x); from = Math.max(0, at - 3); to = Math.min(n, at + 3); }
          for (var j = from; j < to; j++) {
            var dx = sx(xs[j]) - px, dy = sy(ys[j]) - py, d = dx * dx + dy * dy;
            if (d < bestD) { bestD = d; best = { s: s, j: j }; }
          }
        });
      }
    }
    var rows = [];
    if (best) {
      var s = best.s, j = best.j, row = { r: s.r, n: s.n, c: s.c, x: s.x[j], y: s.y[j] };
      if (s.s) row.s = s.s[j];
      rows.push(row);
      var value = { run: s.n };
      if (s.d) value.device = s.d;
      value[xTitle(entry)] = temporal ? new Date(s.x[j]).toLocaleString() : s.x[j];
      value.value = s.y[j];
      if (s.s) value.smoothed = s.s[j];
      if (tip) tip(null, event, null, value);
    } else if (tip && !marker) {
      tip(null, event, null, null);
    }
    var had = entry.hovered;
    entry.hovered = best ? best.s.r + " " + best.j : null;
    if (had !== entry.hovered) view.data("hov", rows).runAsync();
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
  var seen = { panels: null, delta: null, alerts: null };

  function afterRefresh() {
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
    views.forEach(function (entry) {
      if (entry.view && entry.alerts) entry.view.data("alrt", alerts).runAsync();
    });
  }
  document.addEventListener("htmx:afterSettle", afterRefresh);


  document.addEventListener("DOMContentLoaded", function () {
    var dash = document.getElementById("dashboard");
    var linked = null;
    if (dash && dash.dataset.xmin !== "" && dash.dataset.xmax !== "") {
      linked = [parseFloat(dash.dataset.xmin), parseFloat(dash.dataset.xmax)];
      zoom = linked;
      var reset = document.getElementById("reset-zoom");
      if (reset) reset.hidden = false;
    }
    var resetButton = document.getElementById("reset-zoom");
    if (resetButton) resetButton.addEventListener("click", function () { setZoom(null); });
    setupPanels(document);
    // A link to a zoomed view: opening it is the user's action; ask for its full resolution.
    if (linked && linked[1] > linked[0]) { zoomWanted = linked; fetchZoom(linked); }
    seen.panels = document.getElementById("panels");
    seen.delta = document.getElementById("delta");
    seen.alerts = document.getElementById("alerts");
  });

  // ---- chart tools ----------------------------------------------------------------------
  // Per panel: full screen (Esc exits), CSV of what the chart shows (the link gets the current
  // zoom), PNG and SVG from the Vega view.

  var FULL_HEIGHT_SLACK = 90; // px: the caption, the x axis and the panel's padding

  function fitFullscreen(entry) {
    var view = entry.view;
    if (!view) return;
    if (entry.height === undefined) entry.height = view.height();
    var full = entry.panel.classList.contains("fullscreen");
    view.height(full ? Math.max(200, window.innerHeight - FULL_HEIGHT_SLACK) : entry.height);
    // Vega's container width and the padded charts' widths follow the window's resize event.
    window.dispatchEvent(new Event("resize"));
    view.runAsync();
  }

  function setFullscreen(panel, on) {
    panel.classList.toggle("fullscreen", on);
    document.body.classList.toggle("has-fullscreen", on);
    var button = panel.querySelector("[data-tool=fullscreen]");
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
    var entry = views.get(panel.id);
    if (!entry) return;
    if (entry.view) fitFullscreen(entry); else embed(panel);
  }

  function fileStem(panel) {
    return (panel.dataset.metric || "chart").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "chart";
  }

  function saveImage(panel, type) {
    var entry = views.get(panel.id);
    if (!entry || !entry.view) return;
    entry.view.toImageURL(type, type === "png" ? 2 : 1).then(function (url) {
      var link = document.createElement("a");
      link.href = url;
      link.download = fileStem(panel) + "." + type;
      document.body.appendChild(link);
      link.click();
      link.remove();
    }).catch(function (err) { console.error("image export failed", panel.id, err); });
  }

  function withZoom(link) {
    var url = new URL(link.getAttribute("href"), window.location.href);
    url.searchParams.delete("xmin");
    url.searchParams.delete("xmax");
    var entry = views.get(link.closest(".panel").id);
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
    else if (name === "csv" || name === "csv-raw") withZoom(tool);
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
    document.querySelectorAll(".panel.fullscreen").forEach(function (panel) { setFullscreen(panel, false); });
  });

  window.trackioFlask = { views: views, zoom: function () { return zoom; }, setZoom: setZoom,
                          shown: shown, stats: stats, alerts: function () { return alerts; } };
})();
