"""The badge card held up to the camera, in card pixels: the QR of a token on a laminated
white card with a school band and a name, a hand holding it, and what can happen to the
laminate (glare, shadow, scratches). bench/badgeframes.py puts it in a camera frame.
"""
from __future__ import annotations

import base64
import zlib

import cv2
import numpy as np
import segno

from portal.badges.sheets import QR_ERROR
from portal.badges.token import PREFIX, RANDOM_BYTES, looks_like_badge

CARD_W, CARD_H = 540, 860         # card pixels (10 px per mm, a 54 x 86 mm card)
MODULE = 12                       # card pixels per QR module
QR_TOP = 170
# Modules across a badge's QR (version 4 at error correction Q), without the quiet zone.
SYMBOL = segno.make_qr(PREFIX + "A" * 33, error=QR_ERROR, boost_error=False).symbol_size(border=0)[0]
PAD = 420                         # room around the card for the hand and arm
_NAMES = ("Maya R.", "Leo T.", "Aisha K.", "Sam O.", "Noor B.", "Eli W.", "Zoe P.", "Ravi M.")
SKIN = ((60, 90, 150), (90, 130, 190), (120, 160, 215), (140, 180, 230), (40, 60, 100))


def seeded_token(rng: np.random.Generator) -> str:
    """A token in the minted format (mint_token uses the CSPRNG; this one is reproducible)."""
    head = PREFIX + _b64(rng.bytes(RANDOM_BYTES))
    token = head + _b64(zlib.crc32(head.encode("ascii")).to_bytes(4, "big"))
    assert looks_like_badge(token)
    return token


def bad_checksum(token: str) -> str:
    """The same token with the first character of its checksum changed."""
    i = len(token) - 6
    bad = token[:i] + ("B" if token[i] != "B" else "C") + token[i + 1:]
    assert not looks_like_badge(bad)
    return bad


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def qr_image(text: str, module: int = MODULE, border: int = 4, error: str = QR_ERROR) -> np.ndarray:
    """A grayscale QR image (0 dark, 255 light) with `module` pixels per module, made as the
    badge sheets make it (portal/badges/sheets.py)."""
    qr = segno.make_qr(text, error=error, boost_error=False)
    mat = np.array([list(row) for row in qr.matrix], dtype=np.uint8)
    mat = np.pad(mat, border)
    img = np.where(mat > 0, 0, 255).astype(np.uint8)
    return cv2.resize(img, None, fx=module, fy=module, interpolation=cv2.INTER_NEAREST)


def card_image(text: str | None, rng: np.random.Generator) -> np.ndarray:
    """A badge card in card pixels (BGR); `text` None draws the back of a card (no QR)."""
    paper = int(rng.integers(232, 252))
    card = np.full((CARD_H, CARD_W, 3), paper, np.uint8)
    band = tuple(int(c) for c in rng.integers(40, 200, 3))
    cv2.rectangle(card, (0, 0), (CARD_W, 110), band, -1)
    cv2.putText(card, "Lincoln Elementary", (40, 72), cv2.FONT_HERSHEY_SIMPLEX, 1.3,
                (255, 255, 255), 3, cv2.LINE_AA)
    ink = int(rng.integers(15, 50))
    if text is not None:
        qr = qr_image(text)
        x0 = (CARD_W - qr.shape[1]) // 2
        y0 = QR_TOP - 4 * MODULE
        region = card[y0:y0 + qr.shape[0], x0:x0 + qr.shape[1]]
        region[qr == 0] = ink
    cv2.putText(card, str(rng.choice(_NAMES)), (60, 720), cv2.FONT_HERSHEY_DUPLEX, 2.2,
                (ink, ink, ink), 4, cv2.LINE_AA)
    cv2.putText(card, f"Room {rng.integers(1, 30)}", (60, 800), cv2.FONT_HERSHEY_SIMPLEX, 1.4,
                (90, 90, 90), 2, cv2.LINE_AA)
    return card


def qr_box() -> tuple[float, float, float]:
    """The QR's centre and width in card pixels (quiet zone excluded)."""
    side = SYMBOL * MODULE
    return CARD_W / 2, QR_TOP + side / 2, side


def _card_mask() -> np.ndarray:
    mask = np.zeros((CARD_H, CARD_W), np.uint8)
    r = 30                                                # rounded corners
    cv2.rectangle(mask, (r, 0), (CARD_W - 1 - r, CARD_H - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (CARD_W - 1, CARD_H - 1 - r), 255, -1)
    for x in (r, CARD_W - 1 - r):
        for y in (r, CARD_H - 1 - r):
            cv2.circle(mask, (x, y), r, 255, -1, cv2.LINE_AA)
    return mask


_MASK = _card_mask()


def hand(rng: np.random.Generator, side: str) -> dict:
    """A hand holding the card from `side`: its palm and arm drawn behind the card, and the thumb."""
    h, w = CARD_H + 2 * PAD, CARD_W + 2 * PAD
    obj = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    skin = SKIN[int(rng.integers(len(SKIN)))]
    sleeve = tuple(int(c) for c in rng.integers(20, 230, 3))
    if side == "bottom":
        palm = (PAD + int(rng.uniform(0.3, 0.7) * CARD_W), PAD + CARD_H + 60)
        arm_end = (palm[0] + int(rng.integers(-120, 120)), h)
        thumb = (palm[0] + int(rng.integers(-40, 40)), PAD + CARD_H - 70), (42, 100), float(rng.uniform(-20, 20))
    else:
        palm = (PAD - 70, PAD + int(rng.uniform(0.55, 0.8) * CARD_H))
        arm_end = (0, palm[1] + 300)
        thumb = (PAD + 12, palm[1] - 60), (36, 90), float(rng.uniform(-15, 15))
    for img, color in ((obj, sleeve), (alpha, 255)):
        cv2.line(img, palm, arm_end, color, 190, cv2.LINE_AA)
    for img, color in ((obj, skin), (alpha, 255)):
        cv2.ellipse(img, palm, (150, 120), 0, 0, 360, color, -1, cv2.LINE_AA)
    alpha[PAD:PAD + CARD_H, PAD:PAD + CARD_W] |= _MASK
    return {"obj": obj, "alpha": alpha, "skin": skin, "thumb": thumb}


def held_card(face: np.ndarray, grip: dict) -> tuple[np.ndarray, np.ndarray]:
    """The card face in the hand: (BGR, alpha) in object pixels. The card hides the fingers,
    the thumb lies over the card."""
    obj = grip["obj"].copy()
    roi = obj[PAD:PAD + CARD_H, PAD:PAD + CARD_W]
    cv2.copyTo(face, _MASK, roi)
    (centre, axes, angle), alpha = grip["thumb"], grip["alpha"].copy()
    cv2.ellipse(obj, centre, axes, angle, 0, 360, grip["skin"], -1, cv2.LINE_AA)
    cv2.ellipse(alpha, centre, axes, angle, 0, 360, 255, -1, cv2.LINE_AA)
    return obj, alpha


_YY, _XX = np.mgrid[0:CARD_H, 0:CARD_W].astype(np.float32)


def glare(card: np.ndarray, gx: float, gy: float, sx: float, sy: float, peak: float) -> np.ndarray:
    """A specular highlight on the laminate: light washes out everything under it."""
    g = peak * 1.5 * np.exp(-(((_XX - gx) / sx) ** 2 + ((_YY - gy) / sy) ** 2) / 2)
    g = np.minimum(g, 1.0)[..., None]
    return (card * (1 - g) + 255 * g).astype(np.uint8)


def shadow(card: np.ndarray, angle: float, offset: float, depth: float, soft: float) -> np.ndarray:
    """A shadow across the card: everything on one side of a line darkened by `depth`."""
    qx, qy, _ = qr_box()
    d = (_XX - qx) * np.cos(angle) + (_YY - qy) * np.sin(angle) - offset
    m = 1 - depth * (1 / (1 + np.exp(-d / soft)))
    return (card * m[..., None]).astype(np.uint8)


def scratches(card: np.ndarray, rng: np.random.Generator, count: int, shine: float) -> np.ndarray:
    """Scratches in the laminate: thin curves, mostly catching the light, some dark."""
    out = card.copy()
    qx, qy, side = qr_box()
    for _ in range(count):
        p0 = rng.normal([qx, qy], side * 0.45, 2)
        p1 = p0 + rng.normal(0, side * 0.5, 2)
        p2 = p1 + rng.normal(0, side * 0.4, 2)
        t = np.linspace(0, 1, 24)[:, None]
        pts = ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2).astype(np.int32)
        dark = rng.random() < 0.3
        level = int(rng.integers(60, 110)) if dark else int(170 + 85 * shine)
        cv2.polylines(out, [pts], False, (level,) * 3, int(rng.integers(1, 5)), cv2.LINE_AA)
    return out
