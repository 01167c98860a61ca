/* Finder marks of a QR code that the page's decoder could not read, for the badge scanner
 * (badge-scanner.js): the same search as the kiosk's (kiosk/finders.py), on a gray frame with
 * the codes that were read painted over. Pure: nothing leaves the page or is kept.
 */
(function () {
  "use strict";

  var BADGE_MODULES = 33;      // a badge's QR (version 4)
  // A second badge's modules, against those of the code read: both are badges held up about as
  // far away (within ~2.5x). Finder marks smaller or larger are a wall's squares, not a badge.
  var OTHER_MODULE = [0.4, 2.5];
  var MIN_CHANGES = 6;  // across a QR's data between two finder marks (~14 in print)

  function distance(a, b) {
    return Math.sqrt((a.x - b.x) * (a.x - b.x) + (a.y - b.y) * (a.y - b.y));
  }

  // Whether the frame (gray, w x h) shows a QR beside the codes read (their module sizes in
  // `modules`): finder marks of about their module size, dark-light-dark-light-dark runs
  // 1:1:3:1:1 across and down. Three at a QR's corners, or two at adjacent ones with the timing
  // pattern (alternate modules) between them, are a QR; a wall's square or two are not.
  function unreadQr(gray, w, h, modules) {
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

  // A badge held so close that its QR fills the frame, or more: no decoder reads it, and its
  // finder marks are cut off at the frame's edges, so they cannot be looked for whole. What shows
  // is print's sharp black and white, in squares (modules) so big that a badge's 33 would span
  // most of the frame: lines across it, and down it, cross many edges, and the shortest runs
  // between them are still a large share of the frame. A face, a wall or a room has no such
  // pattern; bold stripes may (the advice is all that follows: nothing is sent).
  var CLOSE_MODULE = 1 / 40;   // of the frame's shorter side: the QR then spans 80% of it or more
  var CLOSE_CONTRAST = 80;     // between the darkest and lightest tenth of the frame (0-255)
  var CLOSE_EDGES = 6;         // edges a line crosses, on average, at the least

  function bigModules(rgba, w, h) {
    var step = 4, levels = [], x, y, i;
    for (y = 0; y < h; y += step) {
      for (x = 0; x < w; x += step) {
        i = 4 * (y * w + x);
        levels.push((rgba[i] * 77 + rgba[i + 1] * 150 + rgba[i + 2] * 29) >> 8);
      }
    }
    var sorted = levels.slice().sort(function (a, b) { return a - b; });
    var low = sorted[Math.floor(sorted.length * 0.1)], high = sorted[Math.floor(sorted.length * 0.9)];
    if (high - low < CLOSE_CONTRAST) return false;
    var cut = (low + high) / 2, cols = Math.ceil(w / step), rows = Math.ceil(h / step);
    var darkShare = levels.filter(function (v) { return v < cut; }).length / levels.length;
    if (darkShare < 0.25 || darkShare > 0.75) return false;
    var runs = [], lines = 0, edges = 0;
    function line(count, at) {
      // The runs between edges along one line (those cut by the frame's sides not counted).
      var start = 0, last = at(0) < cut;
      lines++;
      for (var k = 1; k < count; k++) {
        var dark = at(k) < cut;
        if (dark === last) continue;
        edges++;
        if (start > 0) runs.push((k - start) * step);
        start = k;
        last = dark;
      }
    }
    for (y = 0; y < rows; y++) line(cols, function (k) { return levels[y * cols + k]; });
    for (x = 0; x < cols; x++) line(rows, function (k) { return levels[k * cols + x]; });
    if (edges / lines < CLOSE_EDGES || runs.length < 20) return false;
    runs.sort(function (a, b) { return a - b; });
    return runs[Math.floor(runs.length * 0.1)] >= CLOSE_MODULE * Math.min(w, h);
  }

  window.BadgeFinders = {unreadQr: unreadQr, bigModules: bigModules, distance: distance,
                         BADGE_MODULES: BADGE_MODULES};
})();
