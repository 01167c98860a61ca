"""Synthetic camera frames of a hand-held QR badge, reproducible from a seed.

A frame is a cluttered classroom background, a child's shirt and face, and a laminated
white card (school band, QR of a badge token, a name line) held by a hand, seen through
a webcam (slight blur, sensor noise, MJPEG). One condition at a time makes it harder.
Used by bench/decode.py and by tests/kiosk; nothing here is written to disk.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bench.badgecard import (CARD_H, CARD_W, PAD, SKIN, SYMBOL, bad_checksum, card_image, glare, hand,
                             held_card, qr_box, qr_image, scratches, seeded_token, shadow)

CONDITIONS = ("nominal", "small_far", "rotated", "tilted", "motion_blur", "defocus",
              "low_light", "glare", "shadow", "heavy_jpeg", "scratched", "two_badges", "none",
              "one_hidden")   # two badges, the second unreadable: last, so the others' seeds hold
# Conditions whose single frames often fail; the bench also plays one-second clips of them.
HARD = ("small_far", "tilted", "motion_blur", "defocus", "low_light", "glare", "shadow",
        "heavy_jpeg", "scratched")
RESOLUTIONS = ((640, 480), (1280, 720))
CLIP_FRAMES = 30

__all__ = ["BadgeScene", "Pose", "scenes", "bad_checksum", "hide_card", "qr_image", "seeded_token"]


@dataclass
class Scene:
    """What a frame shows: the expected tokens (none, one, or several) and the picture."""
    frame: np.ndarray
    tokens: tuple[str, ...] = ()
    note: str = ""


def background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A cluttered classroom wall: posters, shelves, text, a checkerboard, finder-like squares."""
    base = rng.integers(120, 220, 3).astype(np.float32)
    ramp = np.linspace(0.75, 1.1, w, dtype=np.float32)[None, :, None]
    img = (np.ones((h, w, 3), np.float32) * base * ramp).clip(0, 255).astype(np.uint8)
    for _ in range(rng.integers(10, 22)):
        x, y = int(rng.integers(-50, w)), int(rng.integers(-50, h))
        bw, bh = int(rng.integers(w // 20, w // 4)), int(rng.integers(h // 20, h // 3))
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + bw, y + bh), color, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), bw // 2, color, -1, cv2.LINE_AA)
        elif kind == 2:
            for k in range(int(rng.integers(3, 8))):   # shelf of books
                cv2.rectangle(img, (x + k * bw // 8, y), (x + (k + 1) * bw // 8 - 2, y + bh),
                              tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
        else:
            cv2.putText(img, "ABC 123 read!", (x, y), cv2.FONT_HERSHEY_SIMPLEX,
                        float(rng.uniform(0.5, 2.0)), color, int(rng.integers(1, 4)), cv2.LINE_AA)
    # A checkerboard and a grid of squares: finder-pattern look-alikes for the detectors.
    cx, cy, sq = int(rng.integers(0, w - 120)), int(rng.integers(0, h - 120)), int(rng.integers(6, 16))
    for i in range(8):
        for j in range(8):
            if (i + j) % 2:
                cv2.rectangle(img, (cx + i * sq, cy + j * sq), (cx + (i + 1) * sq, cy + (j + 1) * sq),
                              (20, 20, 20), -1)
    for _ in range(int(rng.integers(3, 7))):
        x, y, s = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(8, 30))
        cv2.rectangle(img, (x, y), (x + s, y + s), (10, 10, 10), -1)
        cv2.rectangle(img, (x + s // 7, y + s // 7), (x + 6 * s // 7, y + 6 * s // 7), (250, 250, 250), -1)
        cv2.rectangle(img, (x + 2 * s // 7, y + 2 * s // 7), (x + 5 * s // 7, y + 5 * s // 7), (10, 10, 10), -1)
    texture = cv2.GaussianBlur(rng.normal(0, 10, (h, w)).astype(np.float32), (0, 0), 3)[..., None]
    return (img.astype(np.float32) + texture).clip(0, 255).astype(np.uint8)


def person(img: np.ndarray, cx: float, rng: np.random.Generator) -> None:
    """A child's shirt and face behind where the card is held."""
    h, w = img.shape[:2]
    shirt = tuple(int(c) for c in rng.integers(20, 230, 3))
    cv2.ellipse(img, (int(cx), int(h * 1.05)), (int(w * 0.28), int(h * 0.55)), 0, 180, 360, shirt, -1,
                cv2.LINE_AA)
    skin = SKIN[int(rng.integers(len(SKIN)))]
    cv2.ellipse(img, (int(cx), int(h * 0.28)), (int(w * 0.09), int(h * 0.17)), 0, 0, 360, skin, -1,
                cv2.LINE_AA)


@dataclass
class Pose:
    """Where the card is: centre in frame pixels, QR width in frame pixels, and angles."""
    cx: float
    cy: float
    qr_px: float
    roll: float = 0.0     # in-plane, degrees
    yaw: float = 0.0      # out-of-plane, degrees
    pitch: float = 0.0


def card_homography(pose: Pose) -> np.ndarray:
    """Homography from padded object pixels to frame pixels for a card seen in `pose`."""
    qx, qy, side = qr_box()
    ox, oy = qx + PAD, qy + PAD              # rotate about the QR's centre
    corners = np.array([[0, 0], [CARD_W, 0], [CARD_W, CARD_H], [0, CARD_H]], np.float32) + PAD
    r, y, p = np.radians([pose.roll, pose.yaw, pose.pitch])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rot = rz @ ry @ rx
    dist = 2.5 * CARD_H                         # perspective of a card held at arm's length
    scale = pose.qr_px / side
    pts = np.c_[corners - [ox, oy], np.zeros(4)] @ rot.T
    z = dist + pts[:, 2]
    proj = (pts[:, :2] * (dist / z)[:, None]) * scale + [pose.cx, pose.cy]
    return cv2.getPerspectiveTransform(corners, proj.astype(np.float32))


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    n = max(3, int(np.ceil(length)) | 1)
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(angle) * (length - 1) / 2, np.sin(angle) * (length - 1) / 2
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, 1, cv2.LINE_AA)
    return k / k.sum()


def _disc_kernel(radius: float) -> np.ndarray:
    n = int(np.ceil(radius)) * 2 + 1
    k = np.zeros((n, n), np.float32)
    cv2.circle(k, (n // 2, n // 2), int(round(radius)), 1.0, -1, cv2.LINE_AA)
    return k / k.sum()


def jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through JPEG in memory (webcams send MJPEG)."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


_OTHER_QR = ("https://lincoln-elementary.example/library/catalog?room=12",
             "WIFI:S:Classroom;T:WPA;P:not-a-badge;;", "spb1_this-is-not-a-token-at-all")


class BadgeScene:
    """One planned scene of a condition; `frame(i)` draws frame i of its one-second clip."""

    def __init__(self, condition: str, size: tuple[int, int], seed: int | tuple):
        assert condition in CONDITIONS, condition
        self.condition, (self.w, self.h) = condition, size
        self.seed = seed
        rng = np.random.default_rng(seed)
        w, h = size
        self.bg = background(w, h, rng)
        person(self.bg, rng.uniform(0.35, 0.65) * w, rng)
        self.p = p = {"exposure": rng.uniform(0.85, 1.1), "cast": rng.uniform(0.92, 1.08, 3),
                      "sigma": rng.uniform(0.5, 0.9), "noise": rng.uniform(1.5, 3.0),
                      "quality": int(rng.integers(70, 93)), "f": rng.uniform(1.0, 2.0),
                      "phase": rng.uniform(0, 2 * np.pi, 4)}
        sizes = {"nominal": (0.22, 0.40), "small_far": (0.10, 0.14), "two_badges": (0.18, 0.26),
                 "heavy_jpeg": (0.16, 0.26), "one_hidden": (0.18, 0.26)}
        lo, hi = sizes.get(condition, (0.20, 0.32))
        self.cards = []
        n = 2 if condition in ("two_badges", "one_hidden") else 1
        variant = int(rng.integers(0, 4)) if condition == "none" else -1
        self.note = ("empty", "blank card", "other QR", "bad checksum")[variant] if variant >= 0 else ""
        if variant == 2:
            self._poster(rng)
        for k in range(n):
            token = seeded_token(rng)
            text = {0: None, 1: None, 2: None, 3: bad_checksum(token)}.get(variant, token)
            qr_px = rng.uniform(lo, hi) * h
            if n == 2:
                cx = (0.28 + 0.44 * k + rng.uniform(-0.04, 0.04)) * w
            else:
                cx = rng.uniform(max(0.3 * w, qr_px), min(0.7 * w, w - qr_px))
            cy = rng.uniform(max(0.3 * h, qr_px * 0.8), min(0.55 * h, h - qr_px * 0.8))
            pose = Pose(cx, cy, qr_px, rng.normal(0, 6), rng.normal(0, 8), rng.normal(0, 8))
            if condition == "rotated":
                pose.roll = rng.uniform(20, 340)
            elif condition == "tilted":
                pose.yaw = rng.choice([-1, 1]) * rng.uniform(35, 60)
                pose.pitch = rng.choice([-1, 1]) * rng.uniform(0, 40)
            side = "bottom" if rng.random() < 0.7 else "left"
            if variant in (0, 2) and rng.random() < 0.5:
                continue                                 # nobody holding anything
            self.cards.append({"token": token if variant < 0 else None, "card": card_image(text, rng),
                               "pose": pose, "grip": hand(rng, side)})
        if condition == "one_hidden":
            if rng.random() < 0.5:
                hide_card(self.cards[1], "thumb")
            else:
                hide_card(self.cards[1], "blur", rng.uniform(2.0, 3.5))
        _, _, side_px = qr_box()
        if condition == "motion_blur":
            p["blur"], p["angle"] = rng.uniform(1.0, 2.0), rng.uniform(0, np.pi)   # in modules
        elif condition == "defocus":
            p["radius"] = rng.uniform(0.45, 0.8)                                   # in modules
        elif condition == "low_light":
            p["exposure"] *= rng.uniform(0.08, 0.15)
            p["gain"], p["noise"], p["quality"] = rng.uniform(2, 3), rng.uniform(2.5, 4), int(rng.integers(60, 80))
        elif condition == "glare":
            qx, qy, _ = qr_box()
            p["glare"] = (qx + rng.uniform(-0.4, 0.4) * side_px, qy + rng.uniform(-0.4, 0.4) * side_px,
                          rng.uniform(0.10, 0.22) * side_px, rng.uniform(0.10, 0.22) * side_px,
                          rng.uniform(0.9, 1.0))
            p["glare_move"] = rng.normal(0, 0.35, 2) * side_px
        elif condition == "shadow":
            p["shadow"] = (rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3) * side_px,
                           rng.uniform(0.45, 0.7), rng.uniform(2, 25))
        elif condition == "heavy_jpeg":
            p["quality"] = int(rng.integers(4, 11))
        elif condition == "scratched":
            p["scratches"] = (int(rng.integers(8, 21)), int(rng.integers(1 << 30)))

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(c["token"] for c in self.cards if c["token"])

    def _poster(self, rng: np.random.Generator) -> None:
        qr = qr_image(str(rng.choice(_OTHER_QR)), module=8)
        side = int(rng.uniform(0.15, 0.3) * self.h)
        qr = cv2.resize(qr, (side, side), interpolation=cv2.INTER_AREA)
        x, y = int(rng.integers(0, self.w - side)), int(rng.integers(0, self.h - side))
        self.bg[y:y + side, x:x + side] = qr[..., None]

    def frame(self, i: int = 0) -> Scene:
        """Frame i (at 30 frames a second): the hand drifts, glare and shadow shift."""
        p, t = self.p, i / CLIP_FRAMES
        rng = np.random.default_rng([*np.atleast_1d(self.seed), 7919, i])
        wave = np.sin(2 * np.pi * p["f"] * t + p["phase"])
        img = self.bg
        for card in self.cards:
            pose = Pose(**vars(card["pose"]))
            if i:
                pose.cx += 0.02 * self.w * wave[0]
                pose.cy += 0.015 * self.h * wave[1]
                pose.roll += 3 * wave[2]
                pose.yaw += 4 * wave[3]
            img = self._composite(img, card, pose, t, rng)
        img = img.astype(np.float32)
        img *= (p["exposure"] * p["cast"]).astype(np.float32)
        img = cv2.GaussianBlur(img, (0, 0), p["sigma"])
        if "radius" in p:
            module = self.cards[0]["pose"].qr_px / SYMBOL
            r = max(1.5, p["radius"] * module * (0.85 + 0.15 * np.cos(2 * np.pi * p["f"] * t)))
            img = cv2.filter2D(img, -1, _disc_kernel(r))
        noise = np.empty_like(img)
        cv2.setRNGSeed(int(rng.integers(1 << 31)))
        cv2.randn(noise, 0, p["noise"])
        img += noise
        if "gain" in p:
            img *= np.float32(p["gain"])
        out = jpeg(np.clip(img, 0, 255, out=img).astype(np.uint8), p["quality"])
        return Scene(out, self.tokens, self.note)

    def _composite(self, img: np.ndarray, card, pose, t, rng) -> np.ndarray:
        """`img` (uint8) with the held card drawn over it."""
        p = self.p
        face = card["card"]
        if "glare" in p:
            gx, gy, sx, sy, peak = p["glare"]
            dx, dy = p["glare_move"] * (t - 0.5) * 2
            face = glare(face, gx + dx, gy + dy, sx, sy, peak)
        if "shadow" in p:
            angle, offset, depth, soft = p["shadow"]
            face = shadow(face, angle, offset + 0.1 * qr_box()[2] * np.sin(2 * np.pi * t), depth, soft)
        if "scratches" in p:
            count, seed = p["scratches"]
            face = scratches(face, np.random.default_rng(seed), count, float(rng.uniform(0.3, 1.0)))
        obj, alpha = held_card(face, card["grip"])
        H = card_homography(pose)
        size = (self.w, self.h)
        warped = cv2.warpPerspective(obj, H, size, flags=cv2.INTER_LINEAR)
        a = cv2.warpPerspective(alpha, H, size, flags=cv2.INTER_LINEAR).astype(np.float32) / 255
        if "blur" in p:       # the moving card smears over the still background
            module = pose.qr_px / SYMBOL
            length = p["blur"] * module * (0.35 + 0.65 * abs(np.cos(2 * np.pi * p["f"] * t + p["phase"][0])))
            k = _motion_kernel(max(1.0, length), p["angle"])
            smear = cv2.filter2D(warped.astype(np.float32) * a[..., None], -1, k)
            a = cv2.filter2D(a, -1, k)
            return (img * (1 - a[..., None]) + smear).clip(0, 255).astype(np.uint8)
        return cv2.blendLinear(warped, img, a, 1 - a)


def hide_card(card: dict, how: str, sigma: float = 3.0) -> None:
    """Make a planned card's QR unreadable: "thumb" lays a thumb over the lower 40% of it (a
    finder pattern with it), "blur" defocuses the card by `sigma` frame pixels (held farther
    back than the camera's focus)."""
    qx, qy, side = qr_box()
    if how == "thumb":
        face = card["card"].copy()
        centre = (int(qx + 0.1 * side), int(qy + 0.7 * side))
        cv2.ellipse(face, centre, (int(0.6 * side), int(0.72 * side)), 0, 0, 360,
                    card["grip"]["skin"], -1, cv2.LINE_AA)
        card["card"] = face
    else:
        card["card"] = cv2.GaussianBlur(card["card"], (0, 0), sigma * side / card["pose"].qr_px)


def scenes(condition: str, size: tuple[int, int], count: int, seed: int = 2024):
    """`count` independent scenes of a condition at a size, reproducible from `seed`."""
    ci = CONDITIONS.index(condition)
    for k in range(count):
        yield BadgeScene(condition, size, (seed, ci, size[0], k))
