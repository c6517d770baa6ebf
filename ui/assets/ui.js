// parley web UI: appends server-rendered fragments from Server-Sent
// Events and refreshes panels. Fragments are HTML escaped on the server
// (html/template); nothing here builds HTML from data.
(function () {
  "use strict";

  // Transcript: append new turns as the conversation goes on.
  var transcript = document.getElementById("transcript");
  if (transcript && transcript.dataset.stream && window.EventSource) {
    var state = document.getElementById("live-state");
    var count = document.getElementById("count");
    var es = new EventSource(transcript.dataset.stream);
    es.addEventListener("append", function (e) {
      transcript.insertAdjacentHTML("beforeend", e.data);
      if (count) count.textContent = transcript.children.length;
      var last = transcript.lastElementChild;
      if (last) last.scrollIntoView({block: "end"});
    });
    es.addEventListener("reset", function () { window.location.reload(); });
    es.onopen = function () { if (state) state.textContent = "live"; };
    es.onerror = function () { if (state) state.textContent = "reconnecting…"; };
  }

  // Live events: newest first.
  var live = document.getElementById("live-rows");
  var table = document.getElementById("live");
  if (live && table && table.dataset.stream && window.EventSource) {
    var les = new EventSource(table.dataset.stream);
    les.addEventListener("rows", function (e) {
      var tmp = document.createElement("tbody");
      tmp.insertAdjacentHTML("beforeend", e.data);
      var rows = Array.prototype.slice.call(tmp.children);
      for (var i = 0; i < rows.length; i++) live.insertBefore(rows[i], live.firstChild);
      while (live.children.length > 500) live.removeChild(live.lastElementChild);
    });
  }

  // Delivery and consumers: re-fetch the panel.
  var panel = document.getElementById("panel");
  if (panel && panel.dataset.refresh && window.fetch) {
    var every = parseInt(panel.dataset.interval, 10) || 2000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      fetch(panel.dataset.refresh, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          // Keep open <details> open across refreshes.
          panel.innerHTML = html;
          panel.classList.remove("stale");
        })
        .catch(function () { panel.classList.add("stale"); })
        .then(function () { busy = false; });
    }, every);
  }
})();
