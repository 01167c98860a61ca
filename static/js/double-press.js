/* The pictures page: how long the page had been on the screen when a picture was pressed.
   The portal treats a second press of the picture that made this page, within half a second,
   as the rest of a double-tap, not a choice. It measures from when it made the page; on a slow
   Chromebook the page may reach the screen a good part of that half second later, and the
   second tap of a double-tap would then count as a pick. This tells the portal the time from
   when the page was shown instead. Without it, the portal's own measure stands. */
(function () {
  "use strict";
  var shown = performance.now();

  // Back to this page from the browser's cache: it is shown again now.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) shown = performance.now();
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var field = form instanceof HTMLFormElement && form.querySelector("input[name=shown_ms]");
    if (field) field.value = String(Math.max(0, Math.round(performance.now() - shown)));
  });
})();
