// Junction's own script: small, no framework, every page works without it. It shows times in the
// browser's zone, copies keys, tidies JSON editors, and runs the source debugger's live view
// (Server-Sent Events, rendered with text nodes only: event data never becomes HTML).
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = when.toLocaleString();
        el.title = el.getAttribute("datetime");
      }
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent).then(function () {
            button.textContent = "Copied";
          });
        }
      });
    });
  }

  function jsonEditors(root) {
    root.querySelectorAll("textarea.json-editor, textarea#event").forEach(function (area) {
      area.addEventListener("blur", function () {
        if (!area.value.trim()) { area.removeAttribute("aria-invalid"); return; }
        try {
          area.value = JSON.stringify(JSON.parse(area.value), null, 2);
          area.removeAttribute("aria-invalid");
        } catch (e) {
          area.setAttribute("aria-invalid", "true");
        }
      });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function debuggerView() {
    var panel = document.getElementById("debugger");
    if (!panel || !window.EventSource) { return; }
    var list = document.getElementById("events");
    var status = document.getElementById("live-status");
    var pause = document.getElementById("pause");
    var raw = document.getElementById("raw");
    var search = document.getElementById("q");
    var testers = Array.prototype.map.call(
      document.querySelectorAll("#tester-targets li"),
      function (li) { return { href: li.getAttribute("data-href"), name: li.getAttribute("data-name") }; }
    );
    var paused = false;
    var held = [];

    function matches(item) {
      var needle = (search.value || "").toLowerCase();
      return !needle || item.getAttribute("data-search").indexOf(needle) !== -1;
    }
    function filter() {
      list.querySelectorAll("li.event").forEach(function (item) {
        item.hidden = !matches(item);
      });
    }
    function row(data) {
      var item = el("li", "event");
      item.setAttribute("data-search", (data.raw || "").toLowerCase());
      var details = el("details");
      var summary = el("summary");
      summary.appendChild(el("span", "badge", data.kind));
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(el("strong", "", data.name));
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(el("span", "user", data.user));
      summary.appendChild(document.createTextNode(" "));
      var time = el("time", "", data.received_at);
      time.setAttribute("datetime", data.received_at);
      summary.appendChild(time);
      summary.appendChild(document.createTextNode(" "));
      summary.appendChild(el("span", "muted small", data.routing));
      details.appendChild(summary);
      details.appendChild(el("pre", "code pretty", data.call));
      details.appendChild(el("pre", "code raw", data.raw));
      var links = el("p", "small");
      links.appendChild(document.createTextNode("messageId "));
      var story = el("a", "", data.message_id);
      story.href = "/events/" + encodeURIComponent(data.message_id);
      links.appendChild(story);
      testers.forEach(function (tester) {
        links.appendChild(document.createTextNode(" · "));
        var test = el("a", "", "Test this event with " + tester.name);
        test.href = tester.href + "?message_id=" + encodeURIComponent(data.message_id);
        links.appendChild(test);
      });
      details.appendChild(links);
      item.appendChild(details);
      localTimes(item);
      item.hidden = !matches(item);
      return item;
    }
    function show(data) {
      var empty = document.getElementById("no-events");
      if (empty) { empty.remove(); }
      list.insertBefore(row(data), list.firstChild);
      while (list.children.length > 500) { list.removeChild(list.lastChild); }
    }

    pause.hidden = false;
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = paused ? "Resume" : "Pause";
      status.textContent = paused ? "Paused" : "Live";
      if (!paused) { held.forEach(show); held = []; }
    });
    raw.addEventListener("change", function () {
      document.body.classList.toggle("show-raw", raw.checked);
    });
    search.addEventListener("input", filter);

    var stream = new EventSource(panel.getAttribute("data-live"));
    stream.onopen = function () { status.textContent = paused ? "Paused" : "Live"; };
    stream.onerror = function () { status.textContent = "Reconnecting…"; };
    stream.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (paused) {
        held.push(data);
        status.textContent = "Paused (" + held.length + " waiting)";
      } else {
        show(data);
      }
    };
    stream.addEventListener("lagged", function () {
      status.textContent = "Live (some events were skipped: too many at once)";
    });
    window.addEventListener("pagehide", function () { stream.close(); });
  }

  function init() {
    localTimes(document);
    copyButtons(document);
    jsonEditors(document);
    debuggerView();
    document.body.addEventListener("htmx:afterSwap", function (event) {
      localTimes(event.target);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
