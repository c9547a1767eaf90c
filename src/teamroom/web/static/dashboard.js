// teamroom dashboard: panels kept live by server-sent events, forms posted in place, times kept current.
// Plain JavaScript with no dependencies, served by the dashboard itself: nothing comes from another host.
(function () {
  "use strict";

  var MAX_EVENTS = 300;
  var body = document.body;
  var live = document.getElementById("live");
  var log = document.getElementById("events");
  var notice = document.getElementById("notice");

  // --- the live stream ---------------------------------------------------------------------

  function connect() {
    // EventSource reconnects by itself and then sends Last-Event-ID, so the server knows what we have.
    var source = new EventSource("stream?after=" + encodeURIComponent(body.dataset.after || "0"));
    source.addEventListener("open", function () { setLive("live", "live"); });
    source.addEventListener("error", function () {
      setLive(source.readyState === EventSource.CLOSED ? "disconnected: reload the page" : "reconnecting…", "down");
    });
    source.addEventListener("update", function (e) { apply(JSON.parse(e.data)); });
  }

  function setLive(text, state) {
    live.textContent = text;
    live.dataset.state = state;
  }

  function apply(update) {
    var panels = update.panels || {};
    Object.keys(panels).forEach(function (name) { replacePanel(name, panels[name]); });
    if (update.events && update.events.length) addEvents(update.events);
    if (update.status) setLive(update.status, "down");
    else if (live.dataset.state !== "live") setLive("live", "live");
    body.dataset.after = String(update.id);
    stamp();
  }

  // A panel is replaced whole; what the person was doing in it (typed text, focus, open threads,
  // scroll) is carried over by element id, so an update never loses a half-written reply.
  function replacePanel(name, html) {
    var old = document.querySelector('[data-panel="' + name + '"]');
    if (!old) return;
    var kept = remember(old);
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    old.replaceChildren(fresh.content);
    restore(old, kept);
  }

  function remember(el) {
    var state = { values: {}, open: {}, scroll: {}, focus: null, range: null };
    el.querySelectorAll("input[id], textarea[id], select[id]").forEach(function (f) { state.values[f.id] = f.value; });
    el.querySelectorAll("details[id]").forEach(function (d) { state.open[d.id] = d.open; });
    el.querySelectorAll("[data-stick][id]").forEach(function (s) {
      state.scroll[s.id] = s.scrollHeight - s.scrollTop - s.clientHeight < 8 ? "bottom" : s.scrollTop;
    });
    var active = document.activeElement;
    if (active && active.id && el.contains(active)) {
      state.focus = active.id;
      if (typeof active.selectionStart === "number") state.range = [active.selectionStart, active.selectionEnd];
    }
    return state;
  }

  function restore(el, state) {
    Object.keys(state.values).forEach(function (id) {
      var f = document.getElementById(id);
      if (f && el.contains(f)) f.value = state.values[id];
    });
    Object.keys(state.open).forEach(function (id) {
      var d = document.getElementById(id);
      if (d && el.contains(d)) d.open = state.open[id];
    });
    el.querySelectorAll("[data-stick][id]").forEach(function (s) {
      var at = state.scroll[s.id];
      s.scrollTop = at === undefined || at === "bottom" ? s.scrollHeight : at;
    });
    if (state.focus) {
      var f = document.getElementById(state.focus);
      if (f) {
        f.focus({ preventScroll: true });
        if (state.range && typeof f.setSelectionRange === "function") f.setSelectionRange(state.range[0], state.range[1]);
      }
    }
  }

  function addEvents(rows) {
    var holder = document.createElement("template");
    rows.forEach(function (html) {
      holder.innerHTML = html;
      var row = holder.content.firstElementChild;
      if (!row || log.querySelector('[data-id="' + row.dataset.id + '"]')) return;  // a catch-up may repeat some
      row.classList.add("new");
      log.insertBefore(row, log.firstElementChild);
    });
    while (log.children.length > MAX_EVENTS) log.removeChild(log.lastElementChild);
  }

  // --- actions -----------------------------------------------------------------------------

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches("form[data-act]")) return;
    e.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var typed = Array.prototype.map.call(form.querySelectorAll("textarea[id]"), function (t) { return t.id; });
    if (button) button.disabled = true;
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { "Accept": "application/json" },
      credentials: "same-origin",
    })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        say(answer.message, answer.ok);
        // The panel may have been replaced meanwhile (the change itself arrives by the stream): clear by id.
        if (answer.ok) typed.forEach(function (id) { var t = document.getElementById(id); if (t) t.value = ""; });
      })
      .catch(function () { say("unavailable: the dashboard did not answer; is `teamroom web` still running?", false); })
      .finally(function () { if (button) button.disabled = false; });
  });

  function say(text, ok) {
    notice.textContent = text;
    notice.className = "notice " + (ok ? "ok" : "error");
    notice.setAttribute("role", ok ? "status" : "alert");
  }

  // --- keyboard ----------------------------------------------------------------------------

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t.matches && t.matches("input, textarea, select");
    // Enter sends a form (Shift+Enter is a new line in a text box), like a chat; Ctrl+Enter too.
    var sends = e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing;
    if (sends && t.form && t.form.matches("form[data-act]") && (t.matches("textarea") || e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      t.form.requestSubmit();
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    var link = document.querySelector('nav a[data-key="' + e.key + '"]');
    if (link) {
      e.preventDefault();
      var panel = document.querySelector(link.getAttribute("href"));
      panel.scrollIntoView({ block: "start" });
      panel.focus({ preventScroll: true });
    } else if (e.key === "n") {
      e.preventDefault();
      var compose = document.getElementById("compose");
      compose.open = true;
      document.getElementById("send-to").focus();
    }
  });

  // --- time --------------------------------------------------------------------------------

  function span(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 90) return seconds + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    if (seconds < 129600) return Math.round(seconds / 3600) + " h";
    return Math.round(seconds / 86400) + " d";
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + ":" + two(m) + ":" + two(r) : m + ":" + two(r);
  }

  function stamp() {
    var now = Date.now();
    document.querySelectorAll("time[data-rel]").forEach(function (t) {
      var delta = (now - Date.parse(t.dateTime)) / 1000;
      t.textContent = delta < 2 ? "just now" : span(delta) + " ago";
      t.title = t.dateTime;
    });
    document.querySelectorAll("time[data-countdown]").forEach(function (t) {
      var left = (Date.parse(t.dateTime) - now) / 1000;
      t.textContent = left > 0 ? "in " + clock(left) : "expired";
      t.classList.toggle("soon", left > 0 && left < 120);
      t.classList.toggle("expired", left <= 0);
      t.title = t.dateTime;
    });
  }

  stamp();
  setInterval(stamp, 1000);
  connect();
})();
