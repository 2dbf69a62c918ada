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

  // A pushed ping (an element with data-refresh) says something changed that elements on
  // this page show with their own query: a History page's filtered rows, a folder being
  // scanned. Those elements fetch themselves again, at most once a second and always after
  // the last ping (a trailing throttle, so the final "finished" is never the one dropped).
  var refreshPending = {};
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    // The event names the element that was replaced; the ping is what now has its id.
    var id = event.detail && event.detail.target && event.detail.target.id;
    var ping = id && document.getElementById(id);
    var selector = ping && ping.getAttribute("data-refresh");
    if (!selector || refreshPending[selector]) { return; }
    refreshPending[selector] = window.setTimeout(function () {
      delete refreshPending[selector];
      document.querySelectorAll(selector).forEach(function (element) {
        htmx.trigger(element, "refresh");
      });
    }, 1000);
  });

  // Folder picker: a ticked folder is a line in "Folders to back up", and the other way
  // round; a toggle opens a folder's subfolders, and closes them again.
  function sourceLines() {
    var box = document.getElementById("sources");
    return box ? box.value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean) : [];
  }
  function tickPicked(root) {
    var lines = sourceLines();
    root.querySelectorAll("input[data-pick]").forEach(function (box) {
      box.checked = lines.indexOf(box.getAttribute("data-pick")) >= 0;
    });
  }
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[data-pick]")) { return; }
    var area = document.getElementById("sources");
    var path = box.getAttribute("data-pick");
    var lines = sourceLines().filter(function (line) { return line !== path; });
    if (box.checked) { lines.push(path); }
    area.value = lines.join("\n") + (lines.length ? "\n" : "");
    area.dispatchEvent(new Event("input", { bubbles: true }));   // the worker checks it
  });
  document.addEventListener("input", function (event) {
    if (event.target.id === "sources") { tickPicked(document); }
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var toggle = event.detail.elt;
    if (!toggle.classList || !toggle.classList.contains("picker-toggle")) { return; }
    if (toggle.getAttribute("aria-expanded") === "true") {
      event.preventDefault();
      toggle.setAttribute("aria-expanded", "false");
      toggle.textContent = "▸";
      toggle.closest(".picker-row").querySelector(".picker-children").innerHTML = "";
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var toggle = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (toggle && toggle.classList && toggle.classList.contains("picker-toggle")) {
      toggle.setAttribute("aria-expanded", "true");
      toggle.textContent = "▾";
    }
  });

  // The activity list shows a job (a run, a restore...) on one line: its newest event, pushed
  // on top, takes the place of the line it had (same id) further down.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var list = event.detail.target;
    if (!list || !list.hasAttribute || !list.hasAttribute("data-fold")) { return; }
    var seen = {};
    Array.prototype.slice.call(list.children).forEach(function (line) {
      if (line.id && seen[line.id]) { line.remove(); } else { seen[line.id] = true; }
    });
  });

  // A button with data-fill puts its data-value into the field it names: an adopted drive's
  // folder into "Destination folder".
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-fill]");
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-fill"));
    if (field) {
      field.value = button.getAttribute("data-value");
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.focus();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    fillTimeZones(document);
    tickPicked(document);
  });
  document.addEventListener("htmx:load", function (event) {
    fillTimeZones(event.target);
    tickPicked(event.target);
  });
})();
