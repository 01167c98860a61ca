/* One press, one sheet. A form marked data-one-press answers with a file (a badge sheet, a
   card), so the page stays where it is, and the second press of a double-click would print
   again: the cards of the first sheet would stop working before anyone held them. Presses of
   such a form are ignored for a few seconds after the one that was sent. */
(function () {
  "use strict";
  var HOLD_MS = 5000;

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-one-press")) return;
    var now = Date.now();
    var sent = Number(form.getAttribute("data-sent-at") || 0);
    if (now - sent < HOLD_MS) {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent-at", String(now));
  });

  // Back to this page from the browser's cache: a new visit, every form may be pressed again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent-at]").forEach(function (form) {
      form.removeAttribute("data-sent-at");
    });
  });
})();
