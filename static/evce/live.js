/* evce live updates: the server says over /ws/live/ which topics changed; when one
   this page shows did, the page fetches itself again and swaps its [data-live]
   regions (same view, same selectors as a reload). Forms are never in a region,
   so nothing the user is typing is lost. A lost connection is shown and retried. */
(function () {
  "use strict";

  var body = document.body;
  var wanted = (body.getAttribute("data-live-topics") || "").split(/\s+/).filter(Boolean);
  if (!wanted.length || !("WebSocket" in window)) return;

  var MIN_INTERVAL_MS = 400; // one refresh at a time, at most this often
  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 10000;
  var indicator = document.getElementById("live-state");
  var pending = false;
  var inFlight = false;
  var timer = null;
  var lastFetch = 0;
  var retryMs = RETRY_MIN_MS;
  var everOpen = false;

  function setState(state) {
    body.setAttribute("data-live-state", state);
    if (!indicator) return;
    indicator.setAttribute("data-state", state);
    indicator.textContent = indicator.getAttribute("data-label-" + state) || state;
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live][id]").forEach(function (region) {
      var replacement = fresh.getElementById(region.id);
      if (replacement) region.replaceWith(document.importNode(replacement, true));
    });
    body.setAttribute("data-live-refreshed", String(Date.now()));
    document.dispatchEvent(new CustomEvent("evce:live-refreshed"));
  }

  function refresh() {
    timer = null;
    if (!pending || inFlight) return;
    pending = false;
    inFlight = true;
    lastFetch = Date.now();
    fetch(window.location.href, {
      headers: { "X-Evce-Live": "1" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.redirected && new URL(response.url).pathname.indexOf("/login/") === 0) {
          window.location.reload(); // the session ended: the login page says so
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html) swap(html);
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (pending) schedule();
      });
  }

  function schedule() {
    pending = true;
    if (inFlight || timer) return;
    timer = setTimeout(refresh, Math.max(0, lastFetch + MIN_INTERVAL_MS - Date.now()));
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/live/");
    window.evceLive = { socket: socket };
    socket.onopen = function () {
      retryMs = RETRY_MIN_MS;
      setState("live");
      if (everOpen) schedule(); // what changed while the feed was down
      everOpen = true;
    };
    socket.onmessage = function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      var topics = message.topics || [];
      for (var i = 0; i < topics.length; i++) {
        if (wanted.indexOf(topics[i]) >= 0) {
          schedule();
          return;
        }
      }
    };
    socket.onclose = function () {
      setState("lost");
      schedule(); // also tells whether the session is still valid
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
  }

  setState("connecting");
  connect();
})();
