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

  var PREFIX = root.dataset.prefix || "spb1_";
  var LENGTH = Number(root.dataset.length) || 38;
  var BODY = /^[A-Za-z0-9_-]+$/;
  var SCAN_EVERY_MS = 120;
  var REPOST_AFTER_MS = 5000;  // the same badge is not sent again sooner
  var HOLD_MS = 2500;          // how long a message stays before the prompt comes back
  // A QR read with modules smaller than this (in camera pixels) is held too far away: likely
  // another child's badge across the room, and the reads that go wrong.
  var MIN_MODULE_PX = 2.5;
  var BADGE_MODULES = 33;      // a badge's QR (version 4), for decoders that don't say
  var MAX_SIDE = 640;          // frames are decoded at most this wide (speed on small devices)
  // A second badge's modules, against those of the code read: both are badges held up about as
  // far away (within ~2.5x). Finder marks smaller or larger are a wall's squares, not a badge.
  var OTHER_MODULE = [0.4, 2.5];
  var MIN_CHANGES = 6;  // across a QR's data between two finder marks (~14 in print)

  var SAY = {
    idle: "Hold your badge up to the camera",
    closer: "Hold it a little closer",
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

  function distance(a, b) {
    return Math.sqrt((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y));
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

  // A second badge the decoder cannot read (out of focus, half under a thumb) must still stop
  // a send. With the codes read painted over, look for QR finder marks of about their module
  // size: dark-light-dark-light-dark runs 1:1:3:1:1 across and down. Three at a QR's corners,
  // or two at adjacent ones with the timing pattern (alternate modules) between them, are a
  // QR; a wall's square or two are not.
  function unreadQr(frame, modules) {
    var w = frame.w, h = frame.h;
    var rgba = ctx.getImageData(0, 0, w, h).data;
    var gray = new Uint8Array(w * h);
    for (var i = 0; i < w * h; i++) {
      gray[i] = (rgba[4 * i] * 77 + rgba[4 * i + 1] * 150 + rgba[4 * i + 2] * 29) >> 8;
    }
    rgba = null;
    var lo = OTHER_MODULE[0] * Math.min.apply(null, modules);
    var hi = OTHER_MODULE[1] * Math.max.apply(null, modules);
    var dark = darkMask(gray, w, h);
    var marks = finderMarks(dark, w, h, lo, hi);
    for (var a = 0; a < marks.length; a++) {
      for (var b = a + 1; b < marks.length; b++) {
        if (!similar(marks[a], marks[b])) continue;
        var d = distance(marks[a], marks[b]) / (7 * (marks[a].m + marks[b].m) / 2);
        if (d > 2.8 && d < 4.8 && timingBetween(gray, w, h, marks[a], marks[b])) return true;
        for (var c = b + 1; c < marks.length; c++) {
          if (cornersOfQr(marks[a], marks[b], marks[c]) &&
              busyBetween(dark, w, marks[a], marks[b], marks[c])) return true;
        }
      }
    }
    return false;
  }

  function darkMask(gray, w, h) {
    // Darker than the mean around it, as OpenCV's adaptive threshold (the kiosk's finder search).
    var r = Math.max(7, Math.floor(Math.min(w, h) / 48));
    var sum = new Uint32Array((w + 1) * (h + 1));
    for (var y = 0; y < h; y++) {
      for (var x = 0, row = 0; x < w; x++) {
        row += gray[y * w + x];
        sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row;
      }
    }
    var dark = new Uint8Array(w * h);
    for (y = 0; y < h; y++) {
      var y0 = Math.max(0, y - r), y1 = Math.min(h, y + r + 1);
      for (x = 0; x < w; x++) {
        var x0 = Math.max(0, x - r), x1 = Math.min(w, x + r + 1);
        var area = (y1 - y0) * (x1 - x0);
        var total = sum[y1 * (w + 1) + x1] - sum[y0 * (w + 1) + x1] - sum[y1 * (w + 1) + x0] +
          sum[y0 * (w + 1) + x0];
        dark[y * w + x] = gray[y * w + x] * area <= total - 8 * area ? 1 : 0;
      }
    }
    return dark;
  }

  function finderRuns(runs, lo, hi) {
    var total = runs[0] + runs[1] + runs[2] + runs[3] + runs[4];
    var m = total / 7, slack = m / 2;
    return m >= lo && m <= hi && Math.abs(runs[0] - m) < slack && Math.abs(runs[1] - m) < slack &&
      Math.abs(runs[2] - 3 * m) < 3 * slack && Math.abs(runs[3] - m) < slack &&
      Math.abs(runs[4] - m) < slack ? m : 0;
  }

  function columnRuns(dark, w, h, x, y) {
    // The five runs down column x through (x, y), the middle one dark, and its centre's y.
    var runs = [0, 0, 0, 0, 0], up = y, down = y + 1, k, want;
    for (k = 2; k >= 0; k--) {          // up: the core, the light ring, the dark ring
      want = k % 2 ? 0 : 1;
      while (up >= 0 && dark[up * w + x] === want) { runs[k]++; up--; }
    }
    for (k = 2; k <= 4; k++) {          // down: the rest of the core, the rings
      want = k % 2 ? 0 : 1;
      while (down < h && dark[down * w + x] === want) { runs[k]++; down++; }
    }
    return {runs: runs, centre: up + 1 + runs[0] + runs[1] + runs[2] / 2};
  }

  function finderMarks(dark, w, h, lo, hi) {
    var marks = [];
    for (var y = 0; y < h; y += 2) {
      var runs = [0, 0, 0, 0, 0], state = 0;
      for (var x = 0; x <= w; x++) {
        var d = x < w ? dark[y * w + x] : 0;
        if (state === 0 && !runs[0] && !d) continue;
        if (d === (state % 2 ? 0 : 1)) {
          runs[state]++;
        } else if (state < 4) {
          runs[++state] = 1;
        } else {
          var m = finderRuns(runs, lo, hi);
          if (m) addMark(marks, dark, w, h, x - runs[4] - runs[3] - runs[2] / 2, y, m, lo, hi);
          runs = [runs[2], runs[3], runs[4], 1, 0];
          state = 3;
        }
      }
    }
    return marks.filter(function (mark) { return mark.hits >= 2; });
  }

  function addMark(marks, dark, w, h, cx, y, m, lo, hi) {
    var down = columnRuns(dark, w, h, Math.round(cx), y);
    var mv = finderRuns(down.runs, lo, hi);
    if (!mv || Math.abs(mv - m) > m / 2) return;
    var mark = {x: cx, y: down.centre, m: (m + mv) / 2, hits: 1};
    for (var i = 0; i < marks.length; i++) {
      var other = marks[i];
      if (Math.abs(other.x - mark.x) < 2 * mark.m && Math.abs(other.y - mark.y) < 2 * mark.m) {
        other.hits++;
        return;
      }
    }
    marks.push(mark);
  }

  function similar() {
    var sizes = Array.prototype.map.call(arguments, function (mark) { return mark.m; });
    return Math.max.apply(null, sizes) < 1.7 * Math.min.apply(null, sizes);
  }

  function cornersOfQr(a, b, c) {
    // As the kiosk's decoder: three marks of one size at the corners of a (skewed) square.
    if (!similar(a, b, c)) return false;
    var side = 7 * (a.m + b.m + c.m) / 3;
    var ds = [distance(a, b), distance(b, c), distance(a, c)];
    var shortest = Math.min.apply(null, ds), longest = Math.max.apply(null, ds);
    var turn = Math.abs((b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x));
    return shortest > 1.5 * side && longest < Math.min(8 * side, 2.5 * shortest) &&
      turn >= 0.2 * longest * longest;
  }

  function busyBetween(dark, w, a, b, c) {
    // Between the two marks farthest apart, a QR's modules change often; a wall's do not.
    var pair = [[a, b], [b, c], [a, c]].sort(function (p, q) {
      return distance(q[0], q[1]) - distance(p[0], p[1]);
    })[0];
    var p = pair[0], q = pair[1], m = (p.m + q.m) / 2, span = distance(p, q) / m;
    var changes = 0, last = -1;
    for (var t = 4; t <= span - 4; t += 0.5) {
      var d = dark[Math.round(p.y + (q.y - p.y) * t / span) * w +
                   Math.round(p.x + (q.x - p.x) * t / span)];
      if (last >= 0 && d !== last) changes++;
      last = d;
    }
    return changes >= MIN_CHANGES;
  }

  function timingBetween(gray, w, h, a, b) {
    // Between adjacent corners of a badge's QR, 3 modules in from the marks' centres, its
    // 17 timing modules alternate dark and light.
    var ux = (b.x - a.x) / (BADGE_MODULES - 7), uy = (b.y - a.y) / (BADGE_MODULES - 7);
    for (var inward = -3; inward <= 3; inward += 6) {
      var values = [];
      for (var k = 8; k <= BADGE_MODULES - 9; k++) {
        var x = Math.round(a.x + (k - 3.5) * ux - inward * uy);
        var y = Math.round(a.y + (k - 3.5) * uy + inward * ux);
        if (x < 0 || y < 0 || x >= w || y >= h) break;
        values.push(gray[y * w + x]);
      }
      if (values.length < BADGE_MODULES - 16) continue;
      var turns = 0, step = 0;
      for (var i = 1; i < values.length; i++) {
        step += Math.abs(values[i] - values[i - 1]);
        if (i > 1 && (values[i] - values[i - 1]) * (values[i - 1] - values[i - 2]) < 0) turns++;
      }
      if (turns >= 0.8 * (values.length - 2) && step / (values.length - 1) > 12) return true;
    }
    return false;
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
            return found.length ? withUnread(found) : found;
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
        answer(response.status, body);
      });
    }).catch(function () {
      busy = false;
      hold("offline", SAY.offline, 4000);
    });
  }

  function answer(status, body) {
    if (status === 200 && isLocalPath(body.next)) {
      setState("success", SAY.success);
      stopCamera();
      window.setTimeout(function () { window.location.assign(body.next); }, 700);
      return;
    }
    busy = false;
    if (status === 429) {
      hold("wait", SAY.wait, 10000);
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

  function noCamera(text) {
    stopCamera();
    setState("no-camera", text);
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      noCamera("This page can't use the camera here. Ask your teacher to open it with https.");
      return;
    }
    navigator.mediaDevices.getUserMedia({
      audio: false,
      video: {facingMode: "user", width: {ideal: 640}, height: {ideal: 480}}
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
        noCamera("The camera is turned off for this page. Ask your teacher to turn it on.");
      } else if (name === "NotFoundError" || name === "OverconstrainedError") {
        noCamera("We can't find a camera. Ask your teacher for help.");
      } else {
        noCamera("The camera didn't start. Ask your teacher for help.");
      }
    });
  }

  window.addEventListener("pagehide", stopCamera);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();  // back from another page: start afresh
  });
  start();
}());
