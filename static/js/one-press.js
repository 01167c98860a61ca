/* One press, one sheet. A form marked data-one-press answers with a sheet of badges, opened in a
   tab of its own (target="_blank"), so this page stays where it is, and the second press of a
   double-click would print again: the cards of the first sheet would stop working before anyone
   held them. Presses of such a form are ignored for a few seconds after the one that was sent.
   When the teacher comes back to this page from the sheet, it is loaded again: its rows show
   the new cards, and its messages what the sheet needs (names to write by hand). */
(function () {
  "use strict";
  var HOLD_MS = 5000;
  var printed = false;  // a sheet was asked for from this page
  var away = false;     // and the teacher has since left it (for the sheet's tab)

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
    printed = true;
    away = false;
  });

  function cameBack() {
    if (printed && away) {
      printed = false;
      window.location.reload();
    }
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) away = printed;
    else cameBack();
  });
  window.addEventListener("blur", function () { away = printed; });
  window.addEventListener("focus", cameBack);

  // Back to this page from the browser's cache: a new visit, every form may be pressed again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-sent-at]").forEach(function (form) {
      form.removeAttribute("data-sent-at");
    });
  });
})();
