/* The class page's paper (US Letter or A4) for every sheet it prints: the class's, a
   replacement card, a temporary badge. The choice (the select #paper) is copied into each sheet
   form's paper field (input[data-paper]) and remembered by this browser: a school's computers
   print on its printers' paper. */
(function () {
  "use strict";
  var KEY = "badge-paper";
  var select = document.getElementById("paper");
  if (!select) return;

  function known(value) {
    return Array.prototype.some.call(select.options, function (option) { return option.value === value; });
  }
  function copy() {
    document.querySelectorAll("input[data-paper]").forEach(function (field) { field.value = select.value; });
  }
  try {
    var kept = window.localStorage.getItem(KEY);
    if (kept && known(kept)) select.value = kept;
  } catch (e) { /* storage refused: Letter until chosen */ }
  copy();
  select.addEventListener("change", function () {
    copy();
    try { window.localStorage.setItem(KEY, select.value); } catch (e) { /* this visit only */ }
  });
  // A select the browser restored (back to this page) is copied again before any sheet goes.
  document.addEventListener("submit", copy, true);
})();
