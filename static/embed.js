// Sharing and embedding, on every page: answers trackio's "ask the dashboard for its current
// view" handshake (trackio 0.39, protocol "trackio-view" v1) so pages that embed Trackio can embed
// this dashboard unchanged; fills the sidebar's share link and embed snippet from the address
// (controls change it in place); honours trackio's ?hide_empty_tabs=true. No inline scripts.
(function () {
  "use strict";

  var PROTOCOL = "trackio-view";
  var VERSION = 1;

  function island() {
    var node = document.getElementById("trackio-view");
    if (!node) return {};
    try { return JSON.parse(node.textContent) || {}; } catch (e) { return {}; }
  }

  function number(value) {
    if (value === null || value === "") return null;
    var parsed = Number(value);
    return isFinite(parsed) ? parsed : null;
  }

  function panelsShown() {
    var names = [], onScreen = [];
    var height = window.innerHeight || document.documentElement.clientHeight;
    document.querySelectorAll(".panel[data-metric]").forEach(function (panel) {
      if (panel.closest(".section.system")) return;
      var name = panel.getAttribute("data-metric");
      names.push(name);
      var box = panel.getBoundingClientRect();
      if (box.bottom > 0 && box.top < height && box.width > 0) onScreen.push(name);
    });
    return { metrics: names, onScreen: onScreen };
  }

  // The view as trackio's dashboard describes it (viewState.js buildSnapshot), read from the
  // page's JSON island and the address bar at the moment of asking.
  function snapshot() {
    var base = island();
    var params = new URL(window.location.href).searchParams;
    var xmin = number(params.get("xmin")), xmax = number(params.get("xmax"));
    var shown = panelsShown();
    var xAxis = params.get("x_axis") || params.get("x-axis") || "step";
    return {
      page: base.page || null,
      project: base.project || null,
      space_id: base.space_id || null,
      runs: base.runs || [],
      x_axis: xAxis.indexOf("metric:") === 0 ? xAxis.slice(7) : xAxis,
      x_range: xmin !== null && xmax !== null ? [xmin, xmax] : null,
      smoothing: number(params.get("smoothing")),
      log_x: false,
      log_y: params.get("log_y") === "1" || params.get("log_y") === "true",
      metric_filter: params.get("metric_filter") || null,
      metrics: shown.metrics,
      metrics_on_screen: shown.onScreen,
      latest_x: null,
      captured_at: new Date().toISOString(),
      view_url: window.location.href
    };
  }

  window.addEventListener("message", function (event) {
    var message = event.data;
    if (!message || message.protocol !== PROTOCOL || message.type !== "getState" || !event.source) return;
    var reply;
    try {
      reply = { protocol: PROTOCOL, version: VERSION, type: "state",
                id: message.id === undefined ? null : message.id, state: snapshot() };
    } catch (error) {
      reply = { protocol: PROTOCOL, version: VERSION, type: "error",
                id: message.id === undefined ? null : message.id, error: String(error) };
    }
    event.source.postMessage(reply, event.origin && event.origin !== "null" ? event.origin : "*");
  });
  window.trackio = Object.assign(window.trackio || {},
                                 { getViewState: snapshot, protocolVersion: VERSION });

  function announce() {
    var targets = [];
    try { if (window.parent && window.parent !== window) targets.push(window.parent); } catch (e) { /* cross-origin */ }
    try { if (window.opener && targets.indexOf(window.opener) < 0) targets.push(window.opener); } catch (e) { /* cross-origin */ }
    targets.forEach(function (target) {
      target.postMessage({ protocol: PROTOCOL, version: VERSION, type: "ready",
                           capabilities: ["getState"] }, "*");
    });
  }

  // Share link and embed snippet: built from the address when the box opens or its choice
  // changes, so zoom and controls applied in place are included.
  function escapeRegex(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
  function attribute(text) {
    return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function embedCode(chart) {
    var url = new URL(window.location.href);
    url.searchParams.set("sidebar", "hidden");
    url.searchParams.set("navbar", "hidden");
    if (chart) {
      url.searchParams.set("metric_filter", "^" + escapeRegex(chart) + "$");
      url.searchParams.set("accordion", "hidden");
      url.searchParams.delete("metrics");
    }
    var title = "trackio_flask: " + (island().project || "dashboard") + (chart ? " · " + chart : "");
    return '<iframe src="' + attribute(url.toString()) + '" title="' + attribute(title) +
      '" style="width: 100%; height: ' + (chart ? 420 : 900) + 'px; border: 0;" loading="lazy"></iframe>';
  }

  function fillShare() {
    var link = document.getElementById("share-url");
    if (link) link.value = window.location.href;
    var code = document.getElementById("embed-code");
    var target = document.getElementById("embed-target");
    if (code) code.value = embedCode(target ? target.value : "");
  }

  document.addEventListener("toggle", function (event) {
    if (event.target.id === "share-box" && event.target.open) fillShare();
  }, true);
  document.addEventListener("change", function (event) {
    if (event.target.id === "embed-target") fillShare();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    fillShare();
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () { button.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();
      try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for the user to copy */ }
    }
  });

  function start() {
    if (new URL(window.location.href).searchParams.get("hide_empty_tabs") === "true") {
      document.documentElement.classList.add("hide-empty-tabs");
    }
    announce();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
