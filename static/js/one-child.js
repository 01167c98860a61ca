// A shared classroom device (a kiosk's browser) keeps only the newest child's page: each badge
// sign-in opens a new tab, and the last child's tiles, with their name, stayed one click away in
// the tab before. Each tiles page after a badge sign-in tells this browser's other portal tabs
// that it is here; they leave their child's page for one that names no one.
(function () {
  "use strict";
  if (!("BroadcastChannel" in window)) return;
  var script = document.currentScript;
  var leave = script.dataset.leave;
  var me = String(Math.random()) + String(Date.now());
  var channel = new BroadcastChannel("portal-badge-sign-in");
  channel.onmessage = function (event) {
    if (event.data !== me) {
      channel.close();
      window.location.replace(leave);
    }
  };
  channel.postMessage(me);
})();
