/* The in-browser badge scanner (/badge): camera -> QR decoded in this page -> POST {"token"} to
 * /badge/scan -> go where the portal says.
 *
 * Frames never leave the page: each is drawn to an off-screen canvas, read, and wiped. Nothing is
 * uploaded, stored or logged but the token of one badge, and only when it has a badge's shape
 * (the server checks the rest). Decoding uses the browser's BarcodeDetector where it reads QR
 * codes, and otherwise jsQR, served from static/js/vendor/ (see package.json).
 */
(function () {
  "use strict";

  var root = document.getElementById("scanner");
  if (!root) return;
  var video = document.getElementById("scanner-video");
  var say = document.getElementById("scanner-say");
  var retry = document.getElementById("scanner-retry");
  var teacher = document.getElementById("scanner-teacher");
  var distance = window.BadgeFinders.distance;

  var PREFIX = root.dataset.prefix || "spb1_";
  var LENGTH = Number(root.dataset.length) || 38;
  var BODY = /^[A-Za-z0-9_-]+$/;
  var SCAN_EVERY_MS = 120;
  var REPOST_AFTER_MS = 5000;  // the same badge is not sent again sooner
  var HOLD_MS = 2500;          // how long a message stays before the prompt comes back
  // A QR read with modules smaller than this (in camera pixels) is held too far away: likely
  // another child's badge across the room, and the reads that go wrong.
  var MIN_MODULE_PX = 2.5;
  var BADGE_MODULES = window.BadgeFinders.BADGE_MODULES;  // for decoders that don't say
  var MAX_SIDE = 640;          // frames are decoded at most this wide (speed on small devices)

  var SAY = {
    starting: "Getting the camera ready\u2026",
    idle: "Hold your badge up to the camera",
    closer: "Hold it a little closer",
    farther: "Hold it a little farther away",
    several: "One badge at a time, please",
    notbadge: "That's not a badge. Hold up your badge.",
    checking: "Checking your badge\u2026",
    success: "You're signed in!",
    refused: "That badge didn't work. Ask your teacher for help.",
    wait: "Too many tries. Wait a minute, then try again.",
    stale: "This page was open too long. Starting again\u2026",
    offline: "We can't reach the school's computer. Try again in a minute."
  };

  var detector = null;
  var stream = null;
  var busy = false;
  var stopped = false;
  var holdUntil = 0;
  var pausedUntil = 0;               // after "too many tries", nothing is sent before this
  var sentAt = Object.create(null);  // token -> when it was sent; kept only REPOST_AFTER_MS

  function setState(state, text) {
    root.dataset.state = state;
    if (say.textContent !== text) say.textContent = text;
  }

  function hold(state, text, ms) {
    setState(state, text);
    holdUntil = Date.now() + (ms || HOLD_MS);
  }

  function looksLikeBadge(text) {
    return typeof text === "string" && text.length === LENGTH && text.indexOf(PREFIX) === 0 &&
      BODY.test(text.slice(PREFIX.length));
  }

  function isLocalPath(next) {
    return typeof next === "string" && next.charAt(0) === "/" && next.charAt(1) !== "/" &&
      next.charAt(1) !== "\\";
  }

  // One canvas for frames, shared by both decoders. Drawn, read, and cleared within one look.
  var canvas = document.createElement("canvas");
  var ctx = canvas.getContext("2d", {willReadFrequently: true});

  function drawFrame() {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    var scale = Math.min(1, MAX_SIDE / Math.max(w, h));
    var cw = Math.round(w * scale), ch = Math.round(h * scale);
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    }
    ctx.drawImage(video, 0, 0, cw, ch);
    return {w: cw, h: ch, scale: scale};
  }

  function cover(corners, grow) {
    // Paint over a code that was read, so a further look sees only the rest of the frame.
    var cx = 0, cy = 0;
    corners.forEach(function (p) { cx += p.x / corners.length; cy += p.y / corners.length; });
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    corners.forEach(function (p, i) {
      var x = cx + (p.x - cx) * grow, y = cy + (p.y - cy) * grow;
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.closePath();
    ctx.fill();
  }

  function unreadQr(frame, modules) {
    // A second badge the decoder cannot read (out of focus, half under a thumb) must still
    // stop a send: with the codes read painted over, look for its finder marks.
    var w = frame.w, h = frame.h;
    var rgba = ctx.getImageData(0, 0, w, h).data;
    var gray = new Uint8Array(w * h);
    for (var i = 0; i < w * h; i++) {
      gray[i] = (rgba[4 * i] * 77 + rgba[4 * i + 1] * 150 + rgba[4 * i + 2] * 29) >> 8;
    }
    rgba = null;
    return window.BadgeFinders.unreadQr(gray, w, h, modules);
  }

  function withUnread(found) {
    // The native detector reads the video itself: draw the frame, paint over what it read.
    var frame = drawFrame();
    if (!frame) return found;
    try {
      found.forEach(function (code) {
        cover(code.corners.map(function (p) {
          return {x: p.x * frame.scale, y: p.y * frame.scale};
        }), 1.3);
      });
      var px = found.map(function (c) { return c.side * frame.scale / c.modules; });
      if (unreadQr(frame, px)) found.push({unread: true});
    } finally {
      ctx.clearRect(0, 0, frame.w, frame.h);
    }
    return found;
  }

  function withTooClose(found) {
    // Nothing read: is a badge held so close that its code fills the camera?
    var frame = drawFrame();
    if (!frame) return found;
    try {
      found.tooClose = tooClose(frame);
    } finally {
      ctx.clearRect(0, 0, frame.w, frame.h);
    }
    return found;
  }

  function tooClose(frame) {
    var rgba = ctx.getImageData(0, 0, frame.w, frame.h).data;
    return window.BadgeFinders.bigModules(rgba, frame.w, frame.h);
  }

  function nativeDetector() {
    if (!("BarcodeDetector" in window)) return Promise.resolve(null);
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      if (formats.indexOf("qr_code") < 0) return null;
      var reader = new window.BarcodeDetector({formats: ["qr_code"]});
      return {
        name: "native",
        read: function () {
          return reader.detect(video).then(function (codes) {
            var found = codes.map(function (code) {
              var box = code.boundingBox;
              return {text: code.rawValue, side: Math.min(box.width, box.height),
                      modules: BADGE_MODULES,
                      corners: code.cornerPoints || [{x: box.left, y: box.top},
                        {x: box.right, y: box.top}, {x: box.right, y: box.bottom},
                        {x: box.left, y: box.bottom}]};
            });
            return found.length ? withUnread(found) : withTooClose(found);
          });
        }
      };
    }).catch(function () { return null; });
  }

  function jsqrDetector() {
    if (typeof window.jsQR !== "function") return null;

    function look(found, x, y, w, h, scale) {
      var image = ctx.getImageData(x, y, w, h);
      var code = window.jsQR(image.data, w, h, {inversionAttempts: "dontInvert"});
      image = null;
      if (!code) return false;
      var loc = code.location;
      var corners = [loc.topLeftCorner, loc.topRightCorner, loc.bottomRightCorner,
                     loc.bottomLeftCorner].map(function (p) { return {x: p.x + x, y: p.y + y}; });
      var side = Math.max(distance(corners[0], corners[1]), distance(corners[0], corners[3]));
      var modules = 17 + 4 * code.version;
      found.push({text: code.data, side: side / scale, modules: modules, px: side / modules});
      cover(corners, 1.3);
      return true;
    }

    return {
      name: "jsqr",
      read: function () {
        var frame = drawFrame();
        if (!frame) return Promise.resolve([]);
        var cw = frame.w, ch = frame.h, found = [];
        try {
          // jsQR reads one code a look. A second look with the first code covered finds a
          // second badge; when two badges confuse the whole-frame look, each side is read alone.
          if (look(found, 0, 0, cw, ch, frame.scale)) {
            look(found, 0, 0, cw, ch, frame.scale);
          } else {
            var part = Math.round(cw * 0.6);
            look(found, 0, 0, part, ch, frame.scale);
            look(found, cw - part, 0, part, ch, frame.scale);
          }
          if (found.length && unreadQr(frame, found.map(function (c) { return c.px; }))) {
            found.push({unread: true});
          } else if (!found.length) {
            found.tooClose = tooClose(frame);
          }
        } finally {
          ctx.clearRect(0, 0, cw, ch);  // the frame does not stay in the canvas
        }
        return Promise.resolve(found);
      }
    };
  }

  function forgetOldTokens(now) {
    Object.keys(sentAt).forEach(function (token) {
      if (now - sentAt[token] >= REPOST_AFTER_MS) delete sentAt[token];
    });
  }

  function consider(codes) {
    var now = Date.now();
    // "Too many tries": nothing is sent until the portal's Retry-After has passed.
    if (now < pausedUntil) return;
    forgetOldTokens(now);
    var badges = [], other = false, unread = false;
    codes.forEach(function (code) {
      if (code.unread) unread = true;
      else if (!looksLikeBadge(code.text)) other = true;
      else if (!badges.some(function (b) { return b.text === code.text; })) badges.push(code);
    });
    // A QR that could not be read beside a badge may be another child's badge: sign in nobody.
    if (badges.length > 1 || (badges.length && unread)) {
      hold("several", SAY.several);
      return;
    }
    if (!badges.length) {
      if (other) hold("notbadge", SAY.notbadge);
      else if (codes.tooClose) hold("farther", SAY.farther, 1500);
      else if (now >= holdUntil) setState("idle", SAY.idle);
      return;
    }
    var badge = badges[0];
    if (badge.side / badge.modules < MIN_MODULE_PX) {
      hold("closer", SAY.closer, 1500);
      return;
    }
    if (sentAt[badge.text]) return;
    send(badge.text);
  }

  function send(token) {
    busy = true;
    sentAt[token] = Date.now();
    setState("checking", SAY.checking);
    fetch(root.dataset.scanUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": root.dataset.csrf},
      body: JSON.stringify({token: token})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        answer(response.status, body, response.headers.get("Retry-After"));
      });
    }).catch(function () {
      busy = false;
      hold("offline", SAY.offline, 4000);
    });
  }

  function answer(status, body, retryAfter) {
    if (status === 200 && isLocalPath(body.next)) {
      setState("success", SAY.success);
      stopCamera();
      window.setTimeout(function () { window.location.assign(body.next); }, 700);
      return;
    }
    busy = false;
    if (status === 429) {
      // Wait as long as the portal says (a minute if it does not say; never more than two).
      var seconds = Math.min(Math.max(parseInt(retryAfter, 10) || 60, 1), 120);
      pausedUntil = Date.now() + seconds * 1000;
      hold("wait", SAY.wait, seconds * 1000);
    } else if (status === 400) {
      // Most likely the page's session ran out (CSRF): a fresh page gets a fresh one.
      hold("refused", SAY.stale, 60000);
      stopCamera();
      window.setTimeout(function () { window.location.reload(); }, 1500);
    } else {
      var words = [body.error, body.advice].filter(Boolean).join(". ");
      hold("refused", words || SAY.refused, 4000);
    }
  }

  function schedule() {
    if (!stopped) window.setTimeout(tick, SCAN_EVERY_MS);
  }

  function tick() {
    if (stopped) return;
    if (busy || document.hidden || video.readyState < 2) {
      schedule();
      return;
    }
    detector.read().then(consider, function () {}).then(schedule);
  }

  function stopCamera() {
    stopped = true;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
  }

  function noCamera(text, blocked) {
    stopCamera();
    setState("no-camera", text);
    // Never a dead end: a big "Try again", and, when the browser blocked the camera, the
    // teacher's steps to allow it (the page also starts again by itself once it is allowed).
    if (retry) retry.hidden = false;
    if (teacher) teacher.hidden = !blocked;
  }

  function restart() {
    if (!stopped || root.dataset.state !== "no-camera") return;
    if (retry) retry.hidden = true;
    if (teacher) teacher.hidden = true;
    stopped = false;
    busy = false;
    setState("starting", SAY.starting);
    start();
  }

  function watchPermission() {
    // Where the browser says when the camera's permission changes (the teacher allowed it in
    // the address bar), start the camera again without a reload.
    if (!navigator.permissions || !navigator.permissions.query) return;
    navigator.permissions.query({name: "camera"}).then(function (status) {
      status.addEventListener("change", function () {
        if (status.state !== "denied") restart();
      });
    }).catch(function () {});
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      noCamera("This page can't use the camera here. Ask your teacher to open it with https.");
      return;
    }
    navigator.mediaDevices.getUserMedia({
      audio: false,
      // 1280x720 where the camera has it: a printed badge's modules are under a millimetre,
      // and at 640x480 a child must hold it within about 25 cm. The browser's own detector
      // reads the whole frame; the fallback decoder reads it scaled to MAX_SIDE.
      video: {facingMode: "user", width: {ideal: 1280}, height: {ideal: 720}}
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      return video.play();
    }).then(nativeDetector).then(function (found) {
      detector = found || jsqrDetector();
      if (!detector) {
        noCamera("This browser can't read badges. Use the classroom kiosk, or ask your teacher.");
        return;
      }
      root.dataset.decoder = detector.name;
      setState("idle", SAY.idle);
      tick();
    }).catch(function (error) {
      var name = error && error.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        noCamera("The camera is turned off for this page. Ask your teacher to turn it on.", true);
      } else if (name === "NotFoundError" || name === "OverconstrainedError") {
        noCamera("We can't find a camera. Ask your teacher for help.");
      } else {
        noCamera("The camera didn't start. Ask your teacher for help.");
      }
    });
  }

  if (retry) {
    document.getElementById("scanner-try-again").addEventListener("click", function () {
      restart();
    });
  }
  watchPermission();
  window.addEventListener("pagehide", stopCamera);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();  // back from another page: start afresh
  });
  start();
}());
