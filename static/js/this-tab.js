/* The tiles page of a badge sign-in, on a shared classroom device: only the tab the child signed
 * in to shows their name and tiles. The first tiles page after the sign-in keeps the session's
 * mark in its tab's sessionStorage (which a reload, Back, or coming back from an app keep, and a
 * new tab does not have). A tiles page in a tab without the mark is someone opening the portal
 * again, most often the next child after the last one closed their tab: it shows nothing and
 * signs out (the page's own sign-out form, a POST with its CSRF token), which brings the scanner,
 * or a kiosk's page that names no one. Loaded in <head>, without defer: it runs before the body
 * is drawn. In the child's own tab, it then watches for the end of the sign-in (below). A sign-in
 * on its way to an app claims its tab on a page of its own (data-next), which then goes on.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var key = "portal-badge-tab";
  var mark = script.dataset.mark;
  var leaveTo = script.dataset.leave;
  var here;
  try {
    if (script.dataset.first === "1") {
      window.sessionStorage.setItem(key, mark);
    }
    here = window.sessionStorage.getItem(key);
  } catch (e) {
    here = mark;   // storage turned off: the still-here timer and the server's limit still hold
  }
  if (here !== mark) {
    document.documentElement.classList.add("not-this-tab");
    var signOut = function () {
      var form = document.getElementById("signout");
      if (form) form.submit();
      else window.location.replace(leaveTo);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", signOut);
    else signOut();
    return;
  }
  if (script.dataset.next) {
    // The page that claims the tab on the way to an app: on at once, and nothing to watch.
    window.location.replace(script.dataset.next);
    return;
  }
  if (!script.dataset.alive) return;   // any other page of the sign-in: only the check

  // This tab's child: once their sign-in is over (a refused scan at the kiosk ended it, a
  // teacher's reset, the server's limit, a sign-out in another tab), leave their name and tiles
  // for the page that names no one, rather than wait for someone to touch the page. Asked every
  // few seconds, when the tab comes back into view, and when Back brings the page back from the
  // browser's cache. The question does not keep the sign-in on; no answer (offline, the portal
  // busy) changes nothing.
  var EVERY_MS = 10 * 1000;
  var leaving = false;
  // The page is already going somewhere (its sign-out, a tile): an answer arriving meanwhile must
  // not send it elsewhere instead (a sign-out at the scanner goes back to the scanner). The
  // "still here" timer's sign-out (form.submit(), which fires no submit event) says so itself.
  function going() { leaving = true; }
  document.addEventListener("submit", going, true);
  window.addEventListener("beforeunload", going);
  function away() { return leaving || document.documentElement.dataset.leaving === "1"; }
  function ask() {
    if (away() || !window.fetch) return;
    window.fetch(script.dataset.alive, {credentials: "same-origin", cache: "no-store",
                                        headers: {"Accept": "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (body) {
        if (body && body.here === false && !away()) {
          leaving = true;
          window.location.replace(leaveTo);
        }
      })
      .catch(function () {});
  }
  window.setInterval(ask, EVERY_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) ask(); });
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    leaving = false;   // back from the browser's cache: the way it went is behind it
    ask();
  });
})();
