/* The tiles page of a badge sign-in, on a shared classroom device: only the tab the child signed
 * in to shows their name and tiles. The first tiles page after the sign-in keeps the session's
 * mark in its tab's sessionStorage (which a reload, Back, or coming back from an app keep, and a
 * new tab does not have). A tiles page in a tab without the mark is someone opening the portal
 * again, most often the next child after the last one closed their tab: it shows nothing and
 * signs out (the page's own sign-out form, a POST with its CSRF token), which brings the scanner,
 * or a kiosk's page that names no one. Loaded in <head>, without defer: it runs before the body
 * is drawn.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var key = "portal-badge-tab";
  var mark = script.dataset.mark;
  var here;
  try {
    if (script.dataset.first === "1") {
      window.sessionStorage.setItem(key, mark);
      return;
    }
    here = window.sessionStorage.getItem(key);
  } catch (e) {
    return;   // storage turned off: the still-here timer and the server's limit still hold
  }
  if (here === mark) return;
  document.documentElement.classList.add("not-this-tab");
  function leave() {
    var form = document.getElementById("signout");
    if (form) form.submit();
    else window.location.replace(script.dataset.leave);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", leave);
  else leave();
})();
