"""Badge decoding bench: kiosk.decoder against bare pyzbar, zxing-cpp and OpenCV.

    .venv/bin/python -m bench.decode            # ~2 minutes on one core
    .venv/bin/python -m bench.decode --quick    # fewer frames and clips, ~30 s
    .venv/bin/python -m bench.decode --conditions tilted,glare --sizes 1280x720   # a subset

Frames come from bench/badgeframes.py (fixed seed, nothing written to disk). Every decoder's
output goes through the same rule: only strings that pass looks_like_badge count, two distinct
ones mean "several". Times are CPU time of the one decoding thread (cv2.setNumThreads(1)), so a
busy machine does not inflate them. A clip is played as a kiosk would: frames arrive every
33 ms, the decoder takes the newest one when it is free, and the clip's time to first read
counts decoding time and skipped frames.
"""
from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import zxingcpp
from pyzbar import pyzbar

from bench.badgeframes import CLIP_FRAMES, CONDITIONS, HARD, RESOLUTIONS, scenes
from kiosk.decoder import SEVERAL_BADGES, BadgeRead, read_badge
from portal.badges.token import looks_like_badge

FRAME_MS = 1000 / 30
BUDGET_MS = 15.0


def _verdict(texts) -> BadgeRead:
    tokens = {t for t in texts if looks_like_badge(t)}
    if len(tokens) > 1:
        return SEVERAL_BADGES
    return BadgeRead(tokens.pop()) if tokens else BadgeRead()


def bare_pyzbar(frame):
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return _verdict(r.data.decode("latin-1") for r in pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE]))


def bare_zxing(frame):
    return _verdict(r.text for r in zxingcpp.read_barcodes(frame, formats=zxingcpp.BarcodeFormat.QRCode))


_CV = {}


def bare_opencv(frame, kind="QRCodeDetectorAruco"):
    detector = _CV.setdefault(kind, getattr(cv2, kind)())
    ok, texts, _, _ = detector.detectAndDecodeMulti(frame)
    return _verdict(texts if ok else ())


DECODERS = {
    "kiosk": read_badge,
    "pyzbar": bare_pyzbar,
    "zxing": bare_zxing,
    "cv-aruco": bare_opencv,
    "cv-qr": lambda f: bare_opencv(f, "QRCodeDetector"),
}


def timed(decode, frame) -> tuple[BadgeRead, float]:
    start = time.thread_time()
    read = decode(frame)
    return read, (time.thread_time() - start) * 1000


def judge(read: BadgeRead, tokens: tuple[str, ...]) -> str:
    """'ok', 'miss', 'wrong' (a token not in view, or several for one), 'one' (one of two), 'fp'."""
    if not tokens:
        return "fp" if read.found or read.several else "ok"
    if len(tokens) > 1:
        if read.several:
            return "ok"
        return "miss" if not read.found else ("one" if read.token in tokens else "wrong")
    if read.several or (read.found and read.token != tokens[0]):
        return "wrong"
    return "ok" if read.found else "miss"


def run_frames(names, count, seed, conditions=CONDITIONS, sizes=RESOLUTIONS):
    rows = []
    for size in sizes:
        for condition in conditions:
            stats = {n: {"ok": 0, "wrong": 0, "fp": 0, "one": 0, "ms": []} for n in names}
            for scene in scenes(condition, size, count, seed):
                shot = scene.frame(0)
                for n in names:
                    read, ms = timed(DECODERS[n], shot.frame)
                    verdict = judge(read, shot.tokens)
                    s = stats[n]
                    s["ms"].append(ms)
                    if verdict in ("ok", "wrong", "fp", "one"):
                        s[verdict] += 1
            rows.append((condition, size, count, stats))
            print(_frame_row(condition, size, count, stats, names), flush=True)
    return rows


def play_clip(decode, frames, tokens):
    """Kiosk loop over a 30 fps clip: (frames seen until first read or None, ms, wrong reads)."""
    t, last, wrong = 0.0, -1, 0
    while True:
        i = max(last + 1, int(t // FRAME_MS))
        if i >= len(frames):
            return None, None, wrong
        t = max(t, i * FRAME_MS)
        read, ms = timed(decode, frames(i))
        t, last = t + ms, i
        verdict = judge(read, tokens)
        if verdict == "ok":
            return i + 1, t, wrong
        wrong += verdict == "wrong"


class _Clip:
    """A clip's frames, drawn once on first use and shared by every decoder."""

    def __init__(self, scene):
        self.scene, self.cache = scene, {}

    def __len__(self):
        return CLIP_FRAMES

    def __call__(self, i):
        if i not in self.cache:
            self.cache[i] = self.scene.frame(i).frame
        return self.cache[i]


def run_clips(names, count, seed, conditions=HARD, sizes=RESOLUTIONS):
    rows = []
    for size in sizes:
        for condition in conditions:
            stats = {n: {"read": 0, "frames": [], "ms": [], "wrong": 0} for n in names}
            for scene in scenes(condition, size, count, seed + 1):
                clip = _Clip(scene)
                for n in names:
                    seen, ms, wrong = play_clip(DECODERS[n], clip, scene.tokens)
                    s = stats[n]
                    s["wrong"] += wrong
                    if seen:
                        s["read"] += 1
                        s["frames"].append(seen)
                        s["ms"].append(ms)
            rows.append((condition, size, count, stats))
            print(_clip_row(condition, size, count, stats, names), flush=True)
    return rows


def _frame_row(condition, size, count, stats, names):
    cells = []
    for n in names:
        s = stats[n]
        bad = s["fp"] if condition == "none" else s["wrong"]
        shown = count - s["fp"] if condition == "none" else s["ok"]
        cells.append(f"{shown:>3}/{count:<3} {bad:>3} {np.median(s['ms']):5.1f} {np.percentile(s['ms'], 95):5.1f}")
    return _row(condition, size, cells)


def _clip_row(condition, size, count, stats, names):
    cells = []
    for n in names:
        s = stats[n]
        worst = f"{max(s['frames']):>4} {max(s['ms']):5.0f}" if s["frames"] else f"{'-':>4} {'-':>5}"
        cells.append(f"{s['read']:>3}/{count:<3} {s['wrong']:>3} {worst}")
    return _row(condition, size, cells)


def _row(condition, size, cells):
    return f"{condition:<12}{f'{size[0]}x{size[1]}':<9}| " + " | ".join(f"{c:<23}" for c in cells)


def _header(names, sub):
    return (f"{'':<21}| " + " | ".join(f"{n:<23}" for n in names) + "\n"
            + f"{'condition':<12}{'size':<9}| " + " | ".join(f"{sub:<23}" for _ in names))


def check(frame_rows, clip_rows, names):
    """The aims, each with PASS or FAIL."""
    lines, bare = [], [n for n in names if n != "kiosk"]
    behind = [f"{c} {s[0]}x{s[1]}" for c, s, _, st in frame_rows if c not in ("none",)
              and any(st[n]["ok"] > st["kiosk"]["ok"] for n in bare)]
    lines.append(("kiosk reads at least as many as the best bare decoder in every condition",
                  not behind, ", ".join(behind)))
    wrong = sum(st["kiosk"]["wrong"] for *_, st in frame_rows) + sum(st["kiosk"]["wrong"] for *_, st in clip_rows)
    lines.append(("kiosk: no wrong decodes", wrong == 0, f"{wrong} wrong"))
    fp = sum(st["kiosk"]["fp"] for *_, st in frame_rows)
    lines.append(("kiosk: no false positives on frames without a badge", fp == 0, f"{fp} false"))
    ms720 = [m for c, s, _, st in frame_rows if s == (1280, 720) for m in st["kiosk"]["ms"]]
    empty = [m for c, s, _, st in frame_rows if s == (1280, 720) and c == "none" for m in st["kiosk"]["ms"]]
    if ms720:
        worst_p95 = max(np.percentile(st["kiosk"]["ms"], 95) for c, s, _, st in frame_rows if s == (1280, 720))
        detail = f"worst p95 {worst_p95:.1f} ms, max {max(ms720):.1f} ms"
        if empty:
            detail += f", empty frames median {np.median(empty):.1f} ms p95 {np.percentile(empty, 95):.1f} ms"
        if "pyzbar" in names:  # the machine's speed, to read the budget by (kiosk/decoder.py: 18 ms)
            zbar = [m for c, s, _, st in frame_rows if s == (1280, 720) for m in st["pyzbar"]["ms"]]
            detail += f"; bare pyzbar median {np.median(zbar):.1f} ms here, 18 where the decoder was tuned"
        lines.append((f"kiosk: p95 <= {BUDGET_MS:.0f} ms a 720p frame in every condition",
                      worst_p95 <= BUDGET_MS, detail))
    if clip_rows:
        unread = [f"{c} {s[0]}x{s[1]}" for c, s, n, st in clip_rows if st["kiosk"]["read"] < n
                  or max(st["kiosk"]["ms"]) > 1000]
        lines.append(("kiosk: every hard-condition clip read within one second", not unread, ", ".join(unread)))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 frames a condition, 1 clip")
    parser.add_argument("--frames", type=int, help="frames per condition and size (default 20)")
    parser.add_argument("--clips", type=int, help="clips per hard condition and size (default 2)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--decoders", default="kiosk,pyzbar,zxing,cv-aruco",
                        help=f"comma-separated, from {','.join(DECODERS)}")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help="comma-separated subset of conditions (clips: those of them in HARD)")
    parser.add_argument("--sizes", default="all", help="640x480, 1280x720 or all")
    args = parser.parse_args(argv)
    conditions = tuple(c for c in args.conditions.split(",") if c)
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        parser.error(f"unknown conditions {','.join(sorted(unknown))}; from {','.join(CONDITIONS)}")
    sizes = RESOLUTIONS if args.sizes == "all" else tuple(
        tuple(int(v) for v in s.split("x")) for s in args.sizes.split(","))
    if not set(sizes) <= set(RESOLUTIONS):
        parser.error(f"sizes are from {','.join(f'{w}x{h}' for w, h in RESOLUTIONS)}")
    frames = args.frames or (8 if args.quick else 20)
    clips = args.clips if args.clips is not None else (1 if args.quick else 2)
    names = args.decoders.split(",")
    cv2.setNumThreads(1)
    started = time.monotonic()
    print(f"Single frames: {frames} per condition and size, seed {args.seed}. Per decoder: read = right "
          f"result / frames (none: frames with no false read), bad = wrong decodes (none: false "
          f"positives), median and p95 ms of CPU on one thread.")
    print(_header(names, f"{'read':>7} {'bad':>3} {'med':>5} {'p95':>5}"))
    frame_rows = run_frames(names, frames, args.seed, conditions, sizes)
    clip_rows = []
    hard = tuple(c for c in conditions if c in HARD)
    if clips and hard:
        print(f"\nOne-second clips (30 frames at 30 fps): {clips} per hard condition and size. Per decoder: "
              f"clips read, bad = wrong reads, and for the slowest clip the frames (fr) and ms to the "
              f"first read, decoding time and skipped frames included.")
        print(_header(names, f"{'read':>7} {'bad':>3} {'fr':>4} {'ms':>5}"))
        clip_rows = run_clips(names, clips, args.seed, hard, sizes)
    print()
    failed = 0
    for text, ok, detail in check(frame_rows, clip_rows, names):
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}  {text}" + (f"  ({detail})" if detail else ""))
    print(f"bench took {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
