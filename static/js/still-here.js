/* The tiles page of a badge sign-in, on a shared classroom device: when no one has touched it for
 * a while (no pointer, touch or key), ask "Are you still here?" with a countdown; when no one
 * answers, sign out (the page's own sign-out form: a POST with its CSRF token). The portal then
 * sends the browser to the scanner (a session begun at /badge) or to a page naming no one (a
 * kiosk's). The server's idle limit (PORTAL_KIOSK_IDLE_MINUTES) is what ends the session for
 * certain; this is so the next child finds the device ready rather than someone else's tiles.
 */
(function () {
  "use strict";

  // Two minutes untouched (PORTAL_KIOSK_PAGE_IDLE_SECONDS), then 20 seconds to answer: long enough
  // to read a tile's name, short enough that the next child in line does not find these tiles.
  // The server's limit (PORTAL_KIOSK_IDLE_MINUTES) is the setting that guarantees anything.
  var given = Number(document.currentScript && document.currentScript.dataset.idleSeconds);
  var IDLE_MS = (given >= 30 ? given : 120) * 1000;
  var ANSWER_SECONDS = 20;

  var dialog = document.getElementById("still-here");
  var form = document.getElementById("signout");
  if (!dialog || !form || typeof dialog.showModal !== "function") return;
  var yes = document.getElementById("still-here-yes");
  var seconds = document.getElementById("still-here-seconds");

  var lastTouch = Date.now();
  var askedAt = 0;      // when the question was shown (0: not shown)
  var leaving = false;

  function touched() {
    if (!askedAt) lastTouch = Date.now();
  }

  function stillHere() {
    askedAt = 0;
    lastTouch = Date.now();
    if (dialog.open) dialog.close();
  }

  function signOut() {
    if (leaving) return;
    leaving = true;
    document.documentElement.dataset.leaving = "1";   // this-tab.js's question gives way
    form.submit();   // not requestSubmit: nothing else should get a say
  }

  function check() {
    var now = Date.now();
    if (leaving) return;
    if (!askedAt) {
      if (now - lastTouch >= IDLE_MS) {
        askedAt = now;
        seconds.textContent = String(ANSWER_SECONDS);
        dialog.showModal();
        yes.focus();
      }
      return;
    }
    // Measured from the clock, not by counting ticks: a hidden tab's timers run late.
    var left = ANSWER_SECONDS - Math.floor((now - askedAt) / 1000);
    if (left <= 0) {
      seconds.textContent = "0";
      signOut();
    } else if (seconds.textContent !== String(left)) {
      seconds.textContent = String(left);
    }
  }

  ["pointerdown", "pointermove", "keydown", "touchstart", "wheel", "scroll"].forEach(function (type) {
    window.addEventListener(type, touched, {passive: true, capture: true});
  });
  yes.addEventListener("click", stillHere);
  // Escape closes the question: that is an answer too.
  dialog.addEventListener("close", function () { if (askedAt && !leaving) stillHere(); });
  dialog.addEventListener("cancel", function () { stillHere(); });
  window.setInterval(check, 250);

  // Back to these tiles from an app (the browser's cache): they may no longer be anyone's.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
}());
