// Page controls, with no inline handlers (CSP).
//
// In place (the metrics page: a form with data-apply-url): every control inside the form, or
// tied to it with form=, applies without leaving the page, whoever added it. The form's fields
// (as a GET submit would send them; a "formdata" listener may rewrite them) go to the page's
// refresh endpoint without a version, which answers the new view's full redraw: the next
// poller, the run list and the panels, swapped out of band (app.js keeps the chart views whose
// shape did not change and gives them the new data). The address follows (pushState), and
// back/forward swap the page's state back in. One change at a time: while one is on its way,
// later ones collapse into one more request, so a burst of arrow-key presses on the smoothing
// slider costs two requests, not one per press. Controls marked data-visual (plots per row)
// only change the page, not the data: app.js applies them without a request.
//
// Elsewhere (histograms, alerts, media): a changed control marked data-autosubmit submits its
// form, so every setting lives in the URL; Enter in a search box submits too.
(function () {
  "use strict";

  var TYPING_MS = 300; // a pause in typing applies a filter
  var applying = false, queued = false, lastSent = null, typingTimer = null;
  var history = window.history;
  var log = []; // {started, answered, status}: tests and benchmarks read it

  function inPlaceForm() {
    var form = document.getElementById("controls");
    return form && form.dataset.applyUrl ? form : null;
  }

  function fieldsOf(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string") params.append(name, value);
    });
    return params;
  }

  function notice(text) {
    var box = document.getElementById("apply-notice");
    if (!box) return;
    box.hidden = !text;
    box.textContent = text || "";
  }

  function busy(on) {
    var panels = document.getElementById("panels");
    if (panels) panels.setAttribute("aria-busy", on ? "true" : "false");
    document.documentElement.classList.toggle("applying", on);
  }

  // The first visible change, before the server answers: what the form now asks for (runs
  // ticked and unticked, the smoothing) drawn by app.js from the data the page holds.
  function previewForm(form) {
    var charts = window.trackioFlask;
    if (!charts || !charts.preview) return;
    var hidden = {}, ticked = {}, amount = form.elements.namedItem("smoothing");
    var method = form.elements.namedItem("smoother");
    runBoxes(form).forEach(function (box) { (box.checked ? ticked : hidden)[box.value] = true; });
    charts.preview({ hidden: hidden, ticked: ticked,
                     smoothing: amount && amount.value !== "" ? { method: method ? method.value : "sma",
                                                                 amount: +amount.value } : null });
  }

  function endPreview(redraw) {
    var charts = window.trackioFlask;
    if (charts && charts.preview) { if (redraw) charts.preview(null); else charts.endPreview(); }
  }

  // The page's address for the view the server just rendered (the new poller carries it),
  // plus the zoom, which lives in the page.
  function pageAddress(form, fields) {
    var poller = document.getElementById("poller");
    var address = (poller && poller.dataset.pageUrl) || form.action + "?" + fields;
    var url = new URL(address, window.location.href);
    var zoom = window.trackioFlask && window.trackioFlask.zoom();
    if (zoom) { url.searchParams.set("xmin", zoom[0]); url.searchParams.set("xmax", zoom[1]); }
    return url.toString();
  }

  function apply(started) {
    var form = inPlaceForm();
    if (!form) return;
    previewForm(form);
    if (applying) { queued = true; return; }
    queued = false;
    var params = fieldsOf(form);
    var key = params.toString();
    if (key === lastSent) return; // nothing new (a change and an input event of one move)
    var poller = document.getElementById("poller");
    params.set("iv", (poller && poller.dataset.interval) || "1");
    applying = true;
    lastSent = key;
    var record = { started: started || window.performance.now(), answered: null, status: null };
    log.push(record);
    if (log.length > 50) log.shift();
    var release = window.trackioPoll ? window.trackioPoll.hold() : function () {};
    busy(true);
    window.fetch(form.dataset.applyUrl + "?" + params.toString(), {
      headers: { "HX-Request": "true" }, credentials: "same-origin"
    }).then(function (response) {
      record.status = response.status;
      if (window.trackioPoll) window.trackioPoll.onStatus(response.status, response.headers.get("Retry-After"));
      return response.text().then(function (body) { return { response: response, body: body }; });
    }).then(function (answer) {
      var status = answer.response.status;
      if (status === 429 || status === 503) {
        // Paused like the poller; applied when the pause ends.
        lastSent = null;
        queued = true;
        return;
      }
      if (!answer.response.ok) {
        endPreview(true);
        notice("Could not apply this change: " + (answer.body || "error " + status).slice(0, 300));
        return;
      }
      notice("");
      record.answered = window.performance.now();
      var target = document.getElementById("poller");
      if (!target || !window.htmx) { window.location.assign(form.action + "?" + key); return; }
      document.dispatchEvent(new CustomEvent("trackio:applying", { detail: record }));
      // The last answer on its way shows what the form asks for; an earlier one is drawn
      // under the preview of the later changes.
      if (!queued) endPreview(false);
      window.htmx.swap(target, answer.body, { swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0 });
      var address = pageAddress(form, key);
      if (address && address !== window.location.href) history.pushState({ trackio: true }, "", address);
      document.dispatchEvent(new CustomEvent("trackio:address"));
    }).catch(function () {
      lastSent = null;
      endPreview(true);
      notice("Could not reach the server; the change is not applied yet. Try again in a moment.");
    }).then(function () {
      applying = false;
      release();
      busy(false);
      if (queued && !(window.trackioPoll && window.trackioPoll.paused())) apply();
    });
  }

  document.addEventListener("trackio:resume", function () { if (queued) apply(); });

  // Run selection as a compact token (the codec of trackio_flask/selection.py): a form tied to
  // a run list (data-form) sends `sel=<token>` instead of one run_ids per ticked box, so the
  // URL stays short whatever the selection. The list's data-sel-token is the selection the
  // server drew; the ticked boxes (data-i: index in creation order) edit it; an unchanged
  // selection keeps the URL's own value (data-sel: "" for the default, "all", a token).
  var TOKEN = /^([ixb])([0-9]{1,7})_([0-9a-f]{4})_([A-Za-z0-9_.-]*)$/;

  function parseToken(text) {
    var m = TOKEN.exec(text || "");
    if (!m) return null;
    var count = +m[2], listed = {}, picked = {};
    if (m[1] === "b") {
      var bits = atob(m[4].replace(/-/g, "+").replace(/_/g, "/") + "===".slice((m[4].length + 3) % 4));
      for (var b = 0; b < count; b++) if (bits.charCodeAt(b >> 3) >> (b & 7) & 1) picked[b] = true;
    } else {
      (m[4] ? m[4].split(".") : []).forEach(function (part) {
        var ends = part.split("-"), low = +ends[0], high = ends.length > 1 ? +ends[1] : low;
        for (var i = low; i <= high && i < count; i++) listed[i] = true;
      });
      for (var j = 0; j < count; j++) if ((m[1] === "x") !== !!listed[j]) picked[j] = true;
    }
    return { count: count, fp: m[3], picked: picked };
  }

  function rangesText(indices) {
    var parts = [];
    for (var at = 0; at < indices.length;) {
      var end = at;
      while (end + 1 < indices.length && indices[end + 1] === indices[end] + 1) end++;
      parts.push(end === at ? String(indices[at]) : indices[at] + "-" + indices[end]);
      at = end + 1;
    }
    return parts.join(".");
  }

  function encodeToken(picked, count, fp) {
    var yes = [], no = [], bytes = new Array((count + 7) >> 3).fill(0);
    for (var i = 0; i < count; i++) {
      if (picked[i]) { yes.push(i); bytes[i >> 3] |= 1 << (i & 7); } else no.push(i);
    }
    var head = count + "_" + fp + "_";
    var bits = btoa(String.fromCharCode.apply(null, bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    var best = "i" + head + rangesText(yes);
    [ "x" + head + rangesText(no), "b" + head + bits ].forEach(function (c) { if (c.length < best.length) best = c; });
    return best;
  }

  function runListOf(form) {
    return form && form.id ? document.querySelector("[data-sel-token][data-form='" + form.id + "']") : null;
  }

  function runBoxes(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name === "run_ids" && el.type === "checkbox" && el.dataset.i !== undefined;
    });
  }

  function selectionValue(form, list) {
    var token = parseToken(list.dataset.selToken);
    if (!token) return null;
    runBoxes(form).forEach(function (box) {
      if (box.checked) token.picked[+box.dataset.i] = true; else delete token.picked[+box.dataset.i];
    });
    var again = encodeToken(token.picked, token.count, token.fp);
    return again === list.dataset.selToken ? list.dataset.sel : again;
  }

  // "formdata" does not bubble: listen in the capture phase.
  document.addEventListener("formdata", function (event) {
    var form = event.target, list = runListOf(form);
    if (!list) return;
    var value = selectionValue(form, list);
    if (value === null) return;
    event.formData.delete("run_ids");
    event.formData.delete("sel");
    if (value) event.formData.set("sel", value);
  }, true);

  function belongs(control) {
    var form = inPlaceForm();
    return form && control && control.form === form;
  }

  // A visual setting: the page applies it; the address keeps it.
  function applyVisual(control) {
    var url = new URL(window.location.href);
    url.searchParams.delete(control.name);
    if (control.value !== "") url.searchParams.set(control.name, control.value);
    history.pushState({ trackio: true }, "", url.toString());
    document.dispatchEvent(new CustomEvent("trackio:visual", { detail: { name: control.name, value: control.value } }));
    document.dispatchEvent(new CustomEvent("trackio:address"));
  }

  function changed(control, event) {
    if (control.name === "run_ids") {
      var mode = document.getElementById("selection-mode");
      if (mode) mode.value = "some";
    }
    if (control.hasAttribute("data-visual")) { applyVisual(control); return; }
    clearTimeout(typingTimer);
    apply(event.timeStamp);
  }

  document.addEventListener("change", function (event) {
    var control = event.target;
    if (belongs(control)) { changed(control, event); return; }
    if (!control.matches || !control.matches("[data-autosubmit]")) return;
    var form = control.form || document.getElementById("controls");
    if (!form) { applyToAddress(control.name); return; }
    if (control.name === "run_ids") {
      var mode = document.getElementById("selection-mode");
      if (mode) mode.value = "some";
    }
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });

  document.addEventListener("input", function (event) {
    var control = event.target;
    if (control.type === "range") showValue(control);
    if (!belongs(control)) return;
    if (control.type === "range") { apply(event.timeStamp); return; } // live while dragging
    if (control.type === "search" || control.type === "text") {
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { apply(); }, TYPING_MS);
    }
  });

  // Enter in a search box applies at once (two search boxes share the form, which blocks the
  // browser's implicit submit).
  document.addEventListener("keydown", function (event) {
    var control = event.target;
    if (event.key !== "Enter" || !control.matches || !control.matches("input[type=search]")) return;
    event.preventDefault();
    if (belongs(control)) { clearTimeout(typingTimer); apply(event.timeStamp); return; }
    var form = control.form;
    if (form && form.requestSubmit) form.requestSubmit(); else if (form) form.submit();
  });

  document.addEventListener("submit", function (event) {
    if (event.target !== inPlaceForm()) return;
    event.preventDefault();
    apply(event.timeStamp);
  });

  // "all" / "none" buttons tick every run box (or none) and apply once.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-select-runs]");
    var form = inPlaceForm();
    if (!button || !form) return;
    event.preventDefault();
    var all = button.dataset.selectRuns === "all";
    document.querySelectorAll("input[name=run_ids][type=checkbox]").forEach(function (box) {
      if (box.form === form) box.checked = all;
    });
    var mode = document.getElementById("selection-mode");
    if (mode) mode.value = all ? "all" : "some";
    var list = runListOf(form), token = list && parseToken(list.dataset.selToken);
    if (token) {
      // Runs the list does not show are (de)selected too.
      var picked = {};
      if (all) for (var i = 0; i < token.count; i++) picked[i] = true;
      list.dataset.selToken = encodeToken(picked, token.count, token.fp);
      list.dataset.sel = all ? "all" : list.dataset.selToken;
    }
    apply(event.timeStamp);
  });

  // "Clear the filter" buttons of an empty page empty the named control and apply.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-clear]");
    var form = inPlaceForm();
    if (!button || !form) return;
    var control = Array.prototype.filter.call(document.getElementsByName(button.dataset.clear), function (el) {
      return el.form === form;
    })[0];
    if (!control) return;
    control.value = "";
    apply(event.timeStamp);
  });

  // Without the controls form (sidebar hidden, a run's page), a control edits the address.
  function applyToAddress(name) {
    var url = new URL(window.location.href);
    url.searchParams.delete(name);
    document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
      if (input.name !== name) return;
      if (input.type === "checkbox" ? input.checked : input.value !== "") {
        url.searchParams.append(name, input.value);
      }
    });
    window.location.assign(url.toString());
  }

  // A range shows its value beside it; data-say explains it ("{n}" is the value).
  function showValue(range) {
    var out = range.parentNode.querySelector("output");
    if (!out) return;
    var say = range.dataset["say" + range.value] || range.dataset.say;
    out.textContent = say ? say.replace("{n}", range.value) : range.value;
  }

  // Back/forward on the in-place page: the page at that address replaces the dashboard (the
  // same server-rendered page a reload would give; app.js keeps the charts it can).
  window.addEventListener("popstate", function () {
    var form = inPlaceForm();
    if (!form || !window.htmx) return;
    var release = window.trackioPoll ? window.trackioPoll.hold() : function () {};
    busy(true);
    endPreview(false);
    window.fetch(window.location.href, { credentials: "same-origin" }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      var dashboard = document.getElementById("dashboard");
      if (html === null || !dashboard) { window.location.reload(); return; }
      window.htmx.swap(dashboard, html, { swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0 },
                       { select: "#dashboard" });
      lastSent = fieldsOf(inPlaceForm() || form).toString();
      document.dispatchEvent(new CustomEvent("trackio:address"));
    }).catch(function () { window.location.reload(); }).then(function () {
      release();
      busy(false);
    });
  });

  // A region swapped while one of its controls had the keyboard focus: the control with the
  // same name and value in the new region gets it back. A run list whose answer is already
  // outdated (the user changed more meanwhile) is not swapped: it would undo those changes.
  var focused = null;
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "run-list" && queued) { event.detail.shouldSwap = false; return; }
    var active = document.activeElement;
    focused = target && active && target.contains(active) && active.name
      ? { name: active.name, value: active.value } : null;
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    if (!focused) return;
    var wanted = focused;
    focused = null;
    var match = Array.prototype.filter.call(document.getElementsByName(wanted.name), function (el) {
      return el.value === wanted.value;
    })[0];
    if (match && document.activeElement !== match) match.focus({ preventScroll: true });
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[type=range]").forEach(showValue);
    var form = inPlaceForm();
    if (form) lastSent = fieldsOf(form).toString();
  });

  window.trackioControls = { log: log, busy: function () { return applying || queued; },
                             encodeToken: encodeToken, parseToken: parseToken };
})();
