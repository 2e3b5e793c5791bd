// trackio_flask polling guard, shared by every page with a poller (#poller, [data-poll]):
// no polls from a hidden tab, Retry-After obeyed on 429/503, exponential back-off when the
// server is unreachable. Other requests on the page (zoom, "load more") report their status
// through window.trackioPoll.onStatus so one pause covers everything the page would send.
// When a pause ends, "trackio:resume" is dispatched on document. While a control changes the
// view in place (controls.js), the poller is held: a poll of the old view must not land after
// the new view's answer.
(function () {
  "use strict";

  var pausedUntil = 0, failures = 0, noticeTimer = null, holds = 0;
  var MIN_PAUSE = 1000, MAX_PAUSE = 300000;

  function cooldown() {
    var holder = document.querySelector("[data-cooldown]");
    var seconds = holder ? parseFloat(holder.dataset.cooldown) : NaN;
    return (isNaN(seconds) ? 15 : seconds) * 1000;
  }

  function parseRetryAfter(value) {
    if (!value) return null;
    value = String(value).trim();
    if (/^\d+$/.test(value)) return parseInt(value, 10) * 1000;
    var when = Date.parse(value);
    return isNaN(when) ? null : Math.max(0, when - Date.now());
  }

  function paused() { return document.hidden || Date.now() < pausedUntil; }

  function pause(ms, why) {
    ms = Math.min(Math.max(ms, MIN_PAUSE), MAX_PAUSE);
    pausedUntil = Math.max(pausedUntil, Date.now() + ms);
    showNotice(why);
  }

  function resume() {
    triggerPoll();
    document.dispatchEvent(new Event("trackio:resume"));
  }

  function showNotice(why) {
    var notice = document.getElementById("poll-notice");
    clearInterval(noticeTimer);
    function tick() {
      var left = Math.ceil((pausedUntil - Date.now()) / 1000);
      if (left <= 0) {
        if (notice) notice.hidden = true;
        clearInterval(noticeTimer);
        resume();
        return;
      }
      if (!notice) return;
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

  function triggerPoll() {
    if (paused() || !window.htmx) return;
    var poller = document.getElementById("poller");
    if (poller) window.htmx.trigger(poller, "poll-now");
  }

  document.addEventListener("htmx:beforeRequest", function (e) {
    var elt = e.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll") && (paused() || holds > 0)) {
      e.preventDefault();
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    if (xhr && e.detail.elt && e.detail.elt.id === "poller") {
      onStatus(xhr.status, xhr.getResponseHeader("Retry-After"));
    }
  });
  document.addEventListener("htmx:sendError", function () { onStatus(0, null); });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) resume(); });

  // Hold the poller (and cancel a poll in flight) until release() is called.
  function hold() {
    holds += 1;
    var poller = document.getElementById("poller");
    if (poller && window.htmx) window.htmx.trigger(poller, "htmx:abort");
    var released = false;
    return function release() { if (!released) { released = true; holds -= 1; } };
  }

  window.trackioPoll = { onStatus: onStatus, paused: paused, hold: hold,
                         pausedUntil: function () { return pausedUntil; } };
})();
