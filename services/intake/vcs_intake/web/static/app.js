/* DOPA VCS pages: a few lines of our own, no framework. Everything works without them
   (the request page then reloads itself every few seconds until it settles). */
(function () {
  "use strict";

  function copyText(text, done) {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { legacyCopy(text, done); });
    } else {
      legacyCopy(text, done);
    }
  }

  function legacyCopy(text, done) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { document.body.removeChild(area); }
  }

  function bindCopyButtons(root) {
    var buttons = root.querySelectorAll("[data-copy]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () {
        var label = button.textContent;
        copyText(button.getAttribute("data-copy"), function () {
          button.textContent = button.getAttribute("data-copied");
          setTimeout(function () { button.textContent = label; }, 2000);
        });
      });
    });
  }

  /* The request page's status section follows the server's events (SSE). */
  function followStatus() {
    var section = document.querySelector("[data-live]");
    if (!section || section.getAttribute("data-settled") === "true") { return; }
    if (!window.EventSource) {
      setTimeout(function () { window.location.reload(); }, 5000);
      return;
    }
    var source = new EventSource(section.getAttribute("data-live"));
    source.addEventListener("status", function (event) {
      section.innerHTML = event.data;
      bindCopyButtons(section);
    });
    source.addEventListener("end", function (event) {
      section.setAttribute("data-settled", "true");
      section.setAttribute("data-status", event.data);
      source.close();
    });
  }

  /* The calendar button fills the typed date field in the Buddhist Era (3/12/2569). */
  function bindDatePickers() {
    var pickers = document.querySelectorAll("[data-date-picker]");
    Array.prototype.forEach.call(pickers, function (picker) {
      var field = document.getElementById(picker.getAttribute("data-date-picker"));
      picker.addEventListener("change", function () {
        var parts = picker.value.split("-");
        if (parts.length !== 3 || !field) { return; }
        field.value = Number(parts[2]) + "/" + Number(parts[1]) + "/" + (Number(parts[0]) + 543);
        field.dispatchEvent(new Event("change", { bubbles: true }));
        field.focus();
      });
    });
  }

  /* A form is sent once; the server's Idempotency-Key makes a second send harmless anyway. */
  function sendFormsOnce() {
    var forms = document.querySelectorAll("form[data-once]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        if (form.getAttribute("data-sent")) { event.preventDefault(); return; }
        form.setAttribute("data-sent", "true");
        var button = form.querySelector("[type=submit]");
        if (button) { button.setAttribute("aria-busy", "true"); }
      });
    });
  }

  /* The form's hint: rooms of the province still free for the typed window and size, asked
     of the server (which asks the allocator) whenever those fields change. A hint only. */
  function bindFreeRoomsHint() {
    var hint = document.getElementById("free-rooms-hint");
    var form = hint && hint.closest("form");
    if (!form || !window.fetch) { return; }
    var names = ["date", "start_time", "end_time", "participants"];
    var timer = null;
    var asked = 0;
    function ask() {
      var query = new URLSearchParams();
      names.forEach(function (name) { query.set(name, form.elements[name].value); });
      var mine = ++asked;
      fetch(hint.getAttribute("data-source") + "?" + query.toString(), {
        credentials: "same-origin", headers: { Accept: "application/json" }
      }).then(function (response) {
        return response.status === 200 ? response.json() : null;
      }).then(function (found) {
        if (mine !== asked) { return; }
        hint.hidden = !found;
        hint.textContent = found ? found.text : "";
        hint.setAttribute("data-free", found ? String(found.free) : "");
      }).catch(function () { hint.hidden = true; });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(ask, 300);
    }
    names.forEach(function (name) {
      form.elements[name].addEventListener("change", later);
      form.elements[name].addEventListener("input", later);
    });
    if (names.every(function (name) { return form.elements[name].value; })) { ask(); }
  }

  function bindPrint() {
    var buttons = document.querySelectorAll("[data-print]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    bindCopyButtons(document);
    followStatus();
    bindDatePickers();
    sendFormsOnce();
    bindFreeRoomsHint();
    bindPrint();
  });
}());
