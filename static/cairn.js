// Cairn's page script: small behaviours htmx does not cover. No inline handlers, no eval
// (the Content-Security-Policy forbids both).
(function () {
  "use strict";

  var ACTIVITY_SHOWN = 20;

  // Login and setup forms carry the browser's time zone, so times show in local time.
  function fillTimeZones(root) {
    var zone;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
    root.querySelectorAll("input[data-browser-tz]").forEach(function (input) {
      if (!input.value) { input.value = zone || ""; }
    });
  }

  // Forms with data-confirm ask first (disabling a user, later deleting things).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  }, true);

  // A button marked data-once sends its form once: a double click starts one run, not two
  // (the server refuses a second run anyway, but the person should not see that message).
  document.addEventListener("submit", function (event) {
    if (event.defaultPrevented) { return; }
    var button = event.submitter;
    if (button && button.hasAttribute("data-once")) {
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
  });

  // The live status badge tells whether the page is receiving updates.
  function setLive(state, text) {
    document.querySelectorAll("[data-live-status]").forEach(function (badge) {
      badge.setAttribute("data-state", state);
      badge.textContent = text;
    });
  }
  document.addEventListener("htmx:wsOpen", function () { setLive("on", "live"); });
  document.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail && event.detail.event && event.detail.event.code;
    if (code === 1008) {
      setLive("off", "live updates stopped – reload the page or log in again");
    } else {
      setLive("off", "reconnecting…");
    }
  });

  // Pushed events arrive newest first; keep the list short and free of repeats (an event can
  // be both in the state sent on connect and pushed right after it).
  function tidyActivity() {
    var list = document.getElementById("activity-list");
    if (!list) { return; }
    var seen = {};
    Array.prototype.slice.call(list.children).forEach(function (item, index) {
      if (seen[item.id] || index >= ACTIVITY_SHOWN) { item.remove(); } else { seen[item.id] = true; }
    });
  }
  document.addEventListener("htmx:oobAfterSwap", tidyActivity);

  // A run changed somewhere: lists with their own filters (History) fetch their rows again,
  // at most once a second, and always after the last change (a trailing throttle, so the
  // final "finished" is never the one dropped).
  var refreshPending = null;
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (!event.detail || !event.detail.target || event.detail.target.id !== "runs-changed") { return; }
    if (refreshPending) { return; }
    refreshPending = window.setTimeout(function () {
      refreshPending = null;
      document.querySelectorAll("[data-refresh-on-runs]").forEach(function (element) {
        htmx.trigger(element, "refresh");
      });
    }, 1000);
  });

  document.addEventListener("DOMContentLoaded", function () { fillTimeZones(document); });
  document.addEventListener("htmx:load", function (event) { fillTimeZones(event.target); });
})();
