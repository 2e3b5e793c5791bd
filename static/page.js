// What every page shares: the theme switch (remembered in localStorage; theme.js applies it
// before the first paint), links that carry the view's state from the address (tabs: the run
// selection, theme, smoothing…), and the sidebar drawer of narrow screens.
(function () {
  "use strict";

  var THEME_KEY = "trackio-theme";
  var root = document.documentElement;

  function effectiveTheme() {
    var theme = root.getAttribute("data-theme");
    if (theme === "light" || theme === "dark") return theme;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function labelToggle() {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    button.textContent = next === "dark" ? "☾ Dark" : "☀ Light";
    button.setAttribute("aria-label", "Switch to the " + next + " theme");
  }

  function switchTheme() {
    var next = effectiveTheme() === "dark" ? "light" : "dark";
    try { window.localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode: not remembered */ }
    var url = new URL(window.location.href);
    var named = url.searchParams.has("__theme") || url.searchParams.has("theme");
    if (named) {
      // The address chose the theme (and the page was rendered for it): follow the address.
      url.searchParams.delete("theme");
      url.searchParams.set("__theme", next);
      window.location.assign(url.toString());
      return;
    }
    root.setAttribute("data-theme", next);
    labelToggle();
    document.dispatchEvent(new CustomEvent("trackio:theme", { detail: { theme: next } }));
  }

  // ---- links that carry the view state ----------------------------------------------------
  // `data-carry` on a link: add the current address's view parameters (the names the server
  // lists on <body data-carry>); `data-carry="theme"`: only the theme (links to other projects).
  function carried(kind) {
    var names = (document.body.getAttribute("data-carry") || "").split(" ").filter(Boolean);
    if (kind === "theme") names = names.filter(function (n) { return n === "__theme" || n === "theme"; });
    var here = new URLSearchParams(window.location.search), out = [];
    names.forEach(function (name) {
      here.getAll(name).forEach(function (value) { out.push([name, value]); });
    });
    return out;
  }

  function carryLinks() {
    var all = carried(""), theme = carried("theme");
    document.querySelectorAll("a[data-carry]").forEach(function (link) {
      if (!link.dataset.base) link.dataset.base = link.getAttribute("href");
      var url = new URL(link.dataset.base, window.location.href);
      (link.dataset.carry === "theme" ? theme : all).forEach(function (pair) {
        if (!url.searchParams.has(pair[0])) url.searchParams.append(pair[0], pair[1]);
      });
      link.setAttribute("href", url.pathname + url.search + url.hash);
    });
  }

  // ---- the sidebar drawer (narrow screens) ------------------------------------------------
  function drawerOf(button) {
    return document.getElementById(button.getAttribute("aria-controls"));
  }

  function setDrawer(button, open) {
    var drawer = drawerOf(button);
    if (!drawer) return;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    drawer.classList.toggle("open", open);
    document.body.classList.toggle("drawer-open", open);
    if (open) {
      var first = drawer.querySelector("input:not([type=hidden]), select, button, a[href]");
      if (first) first.focus();
    } else {
      button.focus();
    }
  }

  function openDrawerButton() {
    return document.querySelector("[data-drawer][aria-expanded=true]");
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("#theme-toggle");
    if (toggle) { switchTheme(); return; }
    var button = event.target.closest && event.target.closest("[data-drawer]");
    if (button) { setDrawer(button, button.getAttribute("aria-expanded") !== "true"); return; }
    // A click outside the open drawer closes it.
    var open = openDrawerButton();
    var drawer = open && drawerOf(open);
    if (drawer && !drawer.contains(event.target)) setDrawer(open, false);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = openDrawerButton();
    if (open) setDrawer(open, false);
  });

  document.addEventListener("DOMContentLoaded", function () {
    labelToggle();
    carryLinks();
  });
  document.addEventListener("trackio:address", carryLinks);
  window.addEventListener("popstate", carryLinks);
  if (window.matchMedia) {
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    if (query.addEventListener) query.addEventListener("change", labelToggle);
  }
})();
