/* The console's live feed: follows /v1/admin/feed (server-sent events, the session cookie)
   and adds a row per event, newest first, without reloading. The browser reconnects by
   itself with Last-Event-ID, and the desk resumes right after the last event shown. */
(function () {
  "use strict";

  var MAX_ROWS = 300;
  var parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Asia/Bangkok", year: "numeric", month: "numeric", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
  });

  function bangkok(iso) {
    var found = {};
    parts.formatToParts(new Date(iso)).forEach(function (p) { found[p.type] = p.value; });
    return {
      date: Number(found.day) + "/" + Number(found.month) + "/" + (Number(found.year) + 543),
      time: found.hour + ":" + found.minute + ":" + found.second,
      hm: found.hour + ":" + found.minute
    };
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (text !== undefined) { td.textContent = text; }
    row.appendChild(td);
    return td;
  }

  function follow() {
    var rows = document.getElementById("feed-rows");
    var setupNode = document.getElementById("feed-setup");
    if (!rows || !setupNode || !window.EventSource) { return; }
    var setup = JSON.parse(setupNode.textContent);
    var state = document.getElementById("feed-state");
    var empty = document.getElementById("feed-empty");
    var titles = {};
    var asked = {};
    var today = bangkok(new Date().toISOString()).date;

    function titleCell(td, requestId) {
      var link = document.createElement("a");
      link.href = "/console/requests/" + requestId;
      link.setAttribute("data-request", requestId);
      link.textContent = titles[requestId] || requestId.slice(0, 8) + "…";
      td.appendChild(link);
      if (!titles[requestId] && !asked[requestId]) {
        asked[requestId] = true;
        fetch("/console/requests/" + requestId + "/brief", { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (brief) {
            if (!brief) { return; }
            titles[requestId] = brief.title;
            rows.querySelectorAll("a[data-request='" + requestId + "']").forEach(function (a) {
              a.textContent = brief.title;
            });
          });
      }
    }

    function details(name, data) {
      if (name === "request.submitted") {
        var from = bangkok(data.starts_at), to = bangkok(data.ends_at);
        return from.date + " " + from.hm + "–" + to.hm + " · " + data.participants;
      }
      if (name === "room.assigned" || name === "room.reassigned" || name === "room.released") {
        return setup.words.room + " " + (data.meeting_id || "") + (data.capacity ? " (" + data.capacity + ")" : "");
      }
      if (name === "request.rejected") { return setup.locale === "th" ? data.message_th : data.message_en; }
      var channel = setup.channels[data.channel] || data.channel || "";
      if (name === "credentials.failed") { return channel + (data.error ? ": " + data.error : ""); }
      if (name === "credentials.delivered") { return channel; }
      return "";
    }

    function show(name, message) {
      var event = JSON.parse(message.data);
      var data = event.data || {};
      var requestId = data.request_id || event.subject;
      if (name === "request.submitted" && data.title) { titles[requestId] = data.title; }
      var when = bangkok(event.time || new Date().toISOString());
      var row = document.createElement("tr");
      row.className = "feed-row event-" + name.replace(/\./g, "-");
      row.id = "event-" + message.lastEventId;
      cell(row, when.date === today ? when.time : when.date + " " + when.time, "mono");
      cell(row, undefined).appendChild(document.createElement("span")).className = "badge";
      row.lastChild.firstChild.textContent = setup.labels[name] || name;
      cell(row, setup.offices[data.district_code] || data.district_code || "");
      titleCell(cell(row), requestId);
      cell(row, details(name, data));
      rows.insertBefore(row, rows.firstChild);
      while (rows.children.length > MAX_ROWS) { rows.removeChild(rows.lastChild); }
      if (empty) { empty.hidden = true; }
    }

    var source = new EventSource(rows.getAttribute("data-feed") + "?since=" + encodeURIComponent(setup.since));
    Object.keys(setup.labels).forEach(function (name) {
      source.addEventListener(name, function (message) { show(name, message); });
    });
    source.addEventListener("open", function () {
      state.textContent = state.getAttribute("data-live");
      state.setAttribute("data-state", "live");
    });
    source.addEventListener("error", function () {
      state.textContent = state.getAttribute("data-lost");
      state.setAttribute("data-state", "lost");
    });
  }

  document.addEventListener("DOMContentLoaded", follow);
}());
