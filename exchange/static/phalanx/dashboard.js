// Phalanx dashboard behaviour. Loaded as a file (the Content-Security-Policy forbids inline
// script); every page works without it, it only adds convenience and live updates.
"use strict";

(function () {
  // "Select all" boxes: <input type="checkbox" data-select-all="name-of-the-row-boxes">.
  function wireSelectAll(root) {
    root.querySelectorAll("input[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        var name = box.getAttribute("data-select-all");
        document.querySelectorAll('input[type=checkbox][name="' + CSS.escape(name) + '"]')
          .forEach(function (row) { row.checked = box.checked; });
      });
    });
  }

  // Forms that ask before doing something that cannot be undone: <form data-confirm="...">.
  function wireConfirm(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) {
          event.preventDefault();
        }
      });
    });
  }

  // Timers: <time data-countdown datetime="2026-01-01T00:00:00Z"> shows "due in 4m 10s" or
  // "overdue by 2m"; the element gets the class "overdue" once the time has passed.
  function describe(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    if (d) { return d + "d " + h + "h"; }
    if (h) { return h + "h " + m + "m"; }
    if (m) { return m + "m " + r + "s"; }
    return r + "s";
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      var left = at - now;
      el.textContent = left >= 0 ? "due in " + describe(left) : "overdue by " + describe(left);
      el.classList.toggle("overdue", left < 0);
    });
  }

  // Live regions: <div data-live-url="/path/" data-live-version="v1" data-live-interval="3000">.
  // The server answers 204 while nothing changed since `version`, else an HTML fragment
  // (escaped server-side, like every page) whose root carries the new version. Parsing with
  // DOMParser never runs scripts, and the policy would refuse inline ones anyway.
  function wireLive(region) {
    var url = region.getAttribute("data-live-url");
    var interval = parseInt(region.getAttribute("data-live-interval") || "3000", 10);
    var status = document.querySelector('[data-live-status-for="' + CSS.escape(region.id) + '"]');
    var busy = false;

    function poll() {
      if (busy || document.hidden) { return; }
      busy = true;
      var version = region.getAttribute("data-live-version") || "";
      var sep = url.indexOf("?") === -1 ? "?" : "&";
      fetch(url + sep + "since=" + encodeURIComponent(version), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        cache: "no-store",
      }).then(function (response) {
        if (response.status === 204) { return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      }).then(function (html) {
        if (html !== null) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.body.firstElementChild;
          if (fresh) {
            region.setAttribute("data-live-version", fresh.getAttribute("data-live-version") || "");
            region.replaceChildren.apply(region, Array.from(fresh.childNodes));
            wireSelectAll(region);
            wireConfirm(region);
            tickCountdowns();
          }
        }
        if (status) { status.textContent = "Live · updated " + new Date().toLocaleTimeString(); }
      }).catch(function () {
        if (status) { status.textContent = "Live updates paused (connection problem); retrying"; }
      }).finally(function () { busy = false; });
    }

    window.setInterval(poll, interval);
  }

  document.addEventListener("DOMContentLoaded", function () {
    wireSelectAll(document);
    wireConfirm(document);
    tickCountdowns();
    window.setInterval(tickCountdowns, 1000);
    document.querySelectorAll("[data-live-url]").forEach(wireLive);
  });
})();
