"""Renders plates (PlateSpec, from anprtrain.layouts) and the scenes around
them: the camera's view of a plate on a car, with perspective, light,
blur, noise and compression.

render_plate draws a plate flat and large and says where each character
of the registration is; render_scene puts it into a scene at a chosen
character height and returns the scene with every character's corners in
it. Nothing here decides labels: a character's label is what was drawn.
"""

import io
import math

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import layouts

PLATE_H = 200  # the flat plate's height in pixels, before it is put into a scene


class Fonts:
    """Loaded fonts by name, and each family's names."""

    def __init__(self, available):
        self.paths = {n: p for n, (p, _) in available.items()}
        self.families = {}
        for n, (_, fams) in available.items():
            for f in fams:
                self.families.setdefault(f, []).append(n)
        for f in self.families.values():
            f.sort()
        self._cache = {}
        self.glyphs = {}

    def get(self, name, size):
        key = (name, size)
        f = self._cache.get(key)
        if f is None:
            f = ImageFont.truetype(self.paths[name], size)
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = f
        return f

    def pick(self, rng, family):
        names = self.families.get(family) or self.families["din"]
        return names[int(rng.integers(len(names)))]


GLYPH_H = 96  # glyphs are drawn once at this height and scaled from it


def glyph(fonts, name, ch, height, stroke=0):
    """The ink of one character as an 8-bit mask whose ink is `height` pixels
    high (capital height), cropped to the ink. stroke (0..3) emboldens."""
    key = (name, ch, stroke)
    a = fonts.glyphs.get(key)
    if a is None:
        size = int(GLYPH_H * 1.45)
        f = fonts.get(name, size)
        sw = int(round(stroke * GLYPH_H / 40))
        box = f.getbbox(ch, stroke_width=sw)
        w, h = box[2] - box[0] + 4, box[3] - box[1] + 4
        im = Image.new("L", (max(1, w), max(1, h)), 0)
        ImageDraw.Draw(im).text((2 - box[0], 2 - box[1]), ch, fill=255, font=f, stroke_width=sw, stroke_fill=255)
        a = np.asarray(im)
        ys, xs = np.nonzero(a > 20)
        if len(ys) == 0:
            a = np.zeros((GLYPH_H, GLYPH_H // 2), np.uint8)
        else:
            a = np.ascontiguousarray(a[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
        fonts.glyphs[key] = a
    s = height / a.shape[0]
    return cv2.resize(a, (max(1, int(round(a.shape[1] * s))), height), interpolation=cv2.INTER_AREA)


class GlyphStyle:
    """How one plate's characters depart from the font they are set in, so
    that the model learns the characters and not our fonts: real plates are
    set in dies and fonts we do not have (a US state's W with a short middle,
    a die that squeezes M and W into the width of the other letters), and
    stamped, painted or worn thicker or thinner than any font.

    squeeze: wide glyphs are narrowed to this multiple of the font's 'H'
    (0: natural widths); weight: erode (<0) or dilate (>0) the ink by this
    many pixels per 40 of height; warp: the amplitude of a smooth random
    displacement of each glyph, as a fraction of its height; w_apex: draw
    W (and M) as strokes whose middle vertex reaches this fraction of the
    height (0: the font's own)."""

    def __init__(self, rng, kind):
        us = kind == "us"
        self.squeeze = rng.uniform(0.9, 1.15) if rng.random() < (0.45 if us else 0.2) else 0.0
        self.weight = rng.uniform(-1.5, 1.5) if rng.random() < 0.3 else 0.0
        self.warp = rng.uniform(0.01, 0.03) if rng.random() < 0.3 else 0.0
        self.w_apex = rng.uniform(0.45, 1.0) if rng.random() < (0.4 if us else 0.2) else 0.0
        self.seed = int(rng.integers(1 << 30))

    def apply(self, fonts, font, c, m, ch, stroke=0):
        """m: the glyph mask of c at height ch (emboldened by stroke);
        returns the styled mask."""
        if self.w_apex and c in "WM":
            m = stroke_glyph(fonts, font, c, ch, m.shape[1], self.w_apex, stroke)
        if self.squeeze:
            ref = glyph(fonts, font, "H", ch).shape[1] * self.squeeze
            if m.shape[1] > ref:
                m = cv2.resize(m, (max(1, int(round(ref))), m.shape[0]), interpolation=cv2.INTER_AREA)
        if self.weight:
            r = abs(self.weight) * ch / 40
            k = int(round(r))
            if k >= 1:
                el = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
                pad = cv2.copyMakeBorder(m, k, k, k, k, cv2.BORDER_CONSTANT, value=0)
                if self.weight > 0:
                    m = cv2.dilate(pad, el)[k:-k, :]  # as high as before, wider
                elif m.shape[1] > 2 * k + 2:
                    m = cv2.erode(pad, el)[k:-k, 2 * k:-2 * k]
        if self.warp:
            h, w = m.shape
            g = np.random.default_rng(self.seed + ord(c) * 7919 + h)
            amp = self.warp * h
            dx = cv2.resize(g.normal(0, amp, (3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            dy = cv2.resize(g.normal(0, amp, (3, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            m = cv2.remap(m, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return m


def stroke_glyph(fonts, font, c, height, width, apex, stroke=0):
    """W or M drawn as strokes as wide as the font's I, the middle vertex at
    apex of the height (W: from the bottom up; M: from the top down)."""
    sw = max(1, glyph(fonts, font, "I", height, stroke).shape[1])
    width = max(width, 3 * sw)
    s = 4  # drawn large, then reduced, for smooth edges
    H, W, t = height * s, width * s, sw * s
    im = np.zeros((H, W), np.uint8)
    x0, x1, y0, y1 = t / 2, W - t / 2, t / 2, H - t / 2
    mid = (x0 + x1) / 2
    if c == "W":
        ym = y1 - (y1 - y0) * apex
        pts = [(x0, y0), (x0 + (x1 - x0) * 0.25, y1), (mid, ym), (x1 - (x1 - x0) * 0.25, y1), (x1, y0)]
    else:
        ym = y0 + (y1 - y0) * apex
        pts = [(x0, y1), (x0, y0), (mid, ym), (x1, y0), (x1, y1)]
    cv2.polylines(im, [np.array(pts, np.int32).reshape(-1, 1, 2)], False, 255, int(t), cv2.LINE_AA)
    return cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA)


def caption_mask(fonts, name, text, height, spacing=0.0):
    size = max(8, int(height * 1.4))
    f = fonts.get(name, size)
    box = f.getbbox(text)
    w, h = box[2] - box[0] + 8, box[3] - box[1] + 8
    extra = int(spacing * height * max(0, len(text) - 1))
    im = Image.new("L", (max(1, w + extra), max(1, h)), 0)
    d = ImageDraw.Draw(im)
    if spacing == 0:
        d.text((4 - box[0], 4 - box[1]), text, fill=255, font=f)
    else:
        x = 4 - box[0]
        for ch in text:
            d.text((x, 4 - box[1]), ch, fill=255, font=f)
            x += f.getlength(ch) + spacing * height
    a = np.asarray(im)
    ys, xs = np.nonzero(a > 20)
    if len(ys) == 0:
        return None
    a = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    s = height / max(1, a.shape[0])
    return cv2.resize(a, (max(1, int(round(a.shape[1] * s))), max(1, int(height))), interpolation=cv2.INTER_AREA)


def paint(img, mask, x, y, color, alpha=1.0):
    """Composites a colour through mask (0..255) onto img at (x, y), clipped."""
    h, w = mask.shape
    H, W = img.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)[..., None] * (alpha / 255.0)
    region = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = (region * (1 - m) + np.array(color, np.float32) * m).astype(np.uint8)


def background(rng, spec, W, H):
    img = np.empty((H, W, 3), np.uint8)
    img[:] = spec.bg
    if spec.bg_kind == "gradient":
        t = np.linspace(0, 1, H, dtype=np.float32)[:, None, None]
        if rng.random() < 0.5:
            t = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
        a = np.array(spec.bg, np.float32)
        b = np.array(spec.bg2, np.float32)
        img[:] = (a * (1 - t) + b * t).astype(np.uint8)
    elif spec.bg_kind == "graphic":
        # Low-contrast scenery behind the registration: hills, a sun, waves.
        for _ in range(int(rng.integers(1, 5))):
            col = np.clip(np.array(spec.bg2, np.float32) + rng.normal(0, 30, 3), 0, 255).astype(int).tolist()
            kind = rng.integers(3)
            if kind == 0:
                pts = [(0, H)]
                for x in np.linspace(0, W, int(rng.integers(3, 8))):
                    pts.append((int(x), int(H * rng.uniform(0.45, 0.95))))
                pts.append((W, H))
                cv2.fillPoly(img, [np.array(pts, np.int32)], col, cv2.LINE_AA)
            elif kind == 1:
                cv2.circle(img, (int(rng.uniform(0, W)), int(rng.uniform(0, H))), int(rng.uniform(0.1, 0.4) * H), col, -1, cv2.LINE_AA)
            else:
                y = rng.uniform(0.2, 0.9) * H
                xs = np.linspace(0, W, 40)
                ys = y + np.sin(xs / W * rng.uniform(2, 9) + rng.uniform(0, 6)) * H * 0.05
                cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, col, int(rng.uniform(2, 12)), cv2.LINE_AA)
        img[:] = cv2.addWeighted(img, 0.55, np.full_like(img, spec.bg), 0.45, 0)
    # Reflective sheeting and paint are not flat.
    n = rng.normal(0, rng.uniform(1, 6), (H // 8 + 1, W // 8 + 1)).astype(np.float32)
    n = cv2.resize(n, (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.float32) + n[..., None], 0, 255).astype(np.uint8)


def draw_band(rng, img, spec, fonts, bw):
    H = img.shape[0]
    m = int(H * 0.04)
    x0, x1, y0, y1 = m, m + bw, m, H - m
    if spec.band == "green":
        cv2.rectangle(img, (x0, y0), (x1, y1), (0, 160, 80), -1)
        return x1
    blue = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in layouts.EU_BLUE)
    cv2.rectangle(img, (x0, y0), (x1, y1), blue, -1)
    cx, top = (x0 + x1) // 2, y0 + (y1 - y0) * 0.3
    if spec.band == "eu":
        r = bw * 0.3
        for k in range(12):
            a = k * math.pi / 6
            cv2.circle(img, (int(cx + r * math.cos(a)), int(top + r * math.sin(a))), max(1, int(bw * 0.045)), (255, 204, 0), -1, cv2.LINE_AA)
    elif spec.band == "flag":  # a national flag above the code
        fw, fh = int(bw * 0.7), int(bw * 0.5)
        fx, fy = cx - fw // 2, int(top - fh / 2)
        cv2.rectangle(img, (fx, fy), (fx + fw, fy + fh), (200, 16, 46), -1)
        t = max(1, fh // 4)
        cv2.rectangle(img, (fx + fw // 3 - t, fy), (fx + fw // 3 + t, fy + fh), (255, 255, 255), -1)
        cv2.rectangle(img, (fx, fy + fh // 2 - t), (fx + fw, fy + fh // 2 + t), (255, 255, 255), -1)
        cv2.rectangle(img, (fx + fw // 3 - t // 2, fy), (fx + fw // 3 + t // 2, fy + fh), (0, 32, 91), -1)
        cv2.rectangle(img, (fx, fy + fh // 2 - t // 2), (fx + fw, fy + fh // 2 + t // 2), (0, 32, 91), -1)
    code = spec.band_code
    if code:
        ch = int((y1 - y0) * (0.28 if len(code) < 3 else 0.22))
        mk = caption_mask(fonts, fonts.pick(rng, "din"), code, ch)
        if mk is not None:
            if mk.shape[1] > bw * 0.9:
                mk = cv2.resize(mk, (int(bw * 0.9), mk.shape[0]), interpolation=cv2.INTER_AREA)
            paint(img, mk, cx - mk.shape[1] // 2, int(y1 - (y1 - y0) * 0.12 - ch), (255, 255, 255))
    return x1


def draw_right_band(rng, img, spec, fonts, bw):
    H, W = img.shape[:2]
    m = int(H * 0.04)
    x0, x1 = W - m - bw, W - m
    cv2.rectangle(img, (x0, m), (x1, H - m), layouts.EU_BLUE, -1)
    text = layouts.fill(rng, "DD" if spec.right_band == "FR" else "LL")
    mk = caption_mask(fonts, fonts.pick(rng, "din"), text, int(H * 0.22))
    if mk is not None:
        if mk.shape[1] > bw * 0.9:
            mk = cv2.resize(mk, (int(bw * 0.9), mk.shape[0]), interpolation=cv2.INTER_AREA)
        paint(img, mk, (x0 + x1) // 2 - mk.shape[1] // 2, int(H * 0.62), (255, 255, 255))
    cv2.circle(img, ((x0 + x1) // 2, int(H * 0.32)), int(bw * 0.3), (255, 204, 0) if spec.right_band == "IT" else (230, 230, 230), -1 if rng.random() < 0.5 else 2, cv2.LINE_AA)
    return x0


def draw_sticker(rng, img, x, cy, size, ch):
    """A sticker between groups: the tall inspection sticker of older
    Swedish plates (a coloured label with a year digit or a mark), or the
    small square registration sticker of some US plates."""
    col = layouts.pick(rng, [(40, 110, 220), (210, 40, 40), (240, 200, 40), (40, 160, 80), (235, 235, 235), (240, 130, 30)])
    col = tuple(int(np.clip(c + rng.normal(0, 15), 0, 255)) for c in col)
    if rng.random() < 0.6:
        w, h = ch * rng.uniform(0.28, 0.45), ch * rng.uniform(0.7, 0.95)
    else:
        w = h = ch * rng.uniform(0.25, 0.45)
    cx = x + size / 2
    x0, y0 = int(cx - w / 2), int(cy - h / 2)
    cv2.rectangle(img, (x0, y0), (int(x0 + w), int(y0 + h)), col, -1)
    if rng.random() < 0.5:  # its own print: a digit, a ring
        ink = (30, 30, 30) if sum(col) > 400 else (245, 245, 245)
        if rng.random() < 0.5:
            cv2.putText(img, str(int(rng.integers(10))), (int(x0 + w * 0.15), int(y0 + h * 0.6)), cv2.FONT_HERSHEY_SIMPLEX, max(0.2, w / 40), ink, 1, cv2.LINE_AA)
        else:
            cv2.circle(img, (int(cx), int(y0 + h * 0.4)), max(1, int(w * 0.3)), ink, 1, cv2.LINE_AA)


def draw_emblem(rng, img, x, cy, size, spec):
    """Something between groups that is not a character: a seal, a coat of
    arms, a star, a heart, a state's outline, a dot, a sticker."""
    kind = int(rng.integers(7))
    r = size / 2
    cx = int(x + r)
    if kind == 6:
        draw_sticker(rng, img, x, cy, size, size)
    elif kind == 0:  # inspection sticker and seal (Germany), rings of colour
        c1 = tuple(int(v) for v in rng.integers(40, 255, 3))
        cv2.circle(img, (cx, int(cy - r * 0.55)), int(r * 0.5), c1, -1, cv2.LINE_AA)
        cv2.circle(img, (cx, int(cy + r * 0.55)), int(r * 0.45), (200, 200, 200), -1, cv2.LINE_AA)
        cv2.circle(img, (cx, int(cy + r * 0.55)), int(r * 0.3), (90, 90, 90), 1, cv2.LINE_AA)
    elif kind == 1:  # a shield
        col = tuple(int(v) for v in rng.integers(20, 230, 3))
        pts = np.array([(cx - r * 0.6, cy - r * 0.7), (cx + r * 0.6, cy - r * 0.7), (cx + r * 0.6, cy + r * 0.1), (cx, cy + r * 0.8), (cx - r * 0.6, cy + r * 0.1)], np.int32)
        cv2.fillPoly(img, [pts], col, cv2.LINE_AA)
        cv2.polylines(img, [pts], True, (30, 30, 30), max(1, int(r * 0.08)), cv2.LINE_AA)
    elif kind == 2:  # a star
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r * (0.7 if k % 2 == 0 else 0.3)
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        cv2.fillPoly(img, [np.array(pts, np.int32)], spec.fg if rng.random() < 0.6 else (200, 30, 40), cv2.LINE_AA)
    elif kind == 3:  # a heart or a blob: a state's outline, a logo
        pts = []
        n = int(rng.integers(6, 12))
        for k in range(n):
            a = 2 * math.pi * k / n
            rr = r * rng.uniform(0.35, 0.75)
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        col = tuple(int(v) for v in rng.integers(20, 240, 3))
        cv2.fillPoly(img, [np.array(pts, np.int32)], col, cv2.LINE_AA)
    elif kind == 4:  # a dot
        cv2.circle(img, (cx, int(cy)), max(2, int(r * 0.2)), spec.fg, -1, cv2.LINE_AA)
    else:  # a small picture: a cactus, a bird, a tree in a few strokes
        col = tuple(int(v) for v in rng.integers(20, 200, 3))
        t = max(2, int(r * 0.18))
        cv2.line(img, (cx, int(cy - r * 0.7)), (cx, int(cy + r * 0.7)), col, t, cv2.LINE_AA)
        cv2.line(img, (int(cx - r * 0.4), int(cy - r * 0.1)), (int(cx - r * 0.4), int(cy - r * 0.5)), col, t, cv2.LINE_AA)
        cv2.line(img, (int(cx - r * 0.4), int(cy - r * 0.1)), (cx, int(cy - r * 0.1)), col, t, cv2.LINE_AA)


def layout_row(rng, fonts, spec, groups, seps, ch, font, stroke, sx, spacing, style):
    """Glyphs and their x offsets for one row, before it is fitted to the
    plate: [(kind, payload, x, width)] and the row's width."""
    items = []
    x = 0.0
    cell = None
    if spec.mono:
        cell = max(style.apply(fonts, font, c, glyph(fonts, font, c, ch, stroke), ch, stroke).shape[1] for c in "08MW") * sx
    for gi, g in enumerate(groups):
        if gi > 0:
            s = seps[gi - 1] if gi - 1 < len(seps) else " "
            if s == "E":
                w = ch * rng.uniform(0.7, 1.0)
                items.append(("emblem", None, x + ch * 0.12, w))
                x += w + ch * 0.24
            elif s == "S":
                w = ch * rng.uniform(0.45, 0.7)
                items.append(("sticker", None, x + ch * 0.1, w))
                x += w + ch * 0.2
            elif s == "-":
                w = ch * rng.uniform(0.3, 0.5)
                items.append(("dash", None, x + ch * 0.1, w))
                x += w + ch * 0.2
            elif s == "dot":
                items.append(("dot", None, x + ch * 0.1, ch * 0.2))
                x += ch * 0.4
            elif s == "":
                x += ch * spacing
            else:
                x += ch * rng.uniform(0.25, 0.7)
        for k, c in enumerate(g):
            m = style.apply(fonts, font, c, glyph(fonts, font, c, ch, stroke), ch, stroke)
            w = max(1, int(round(m.shape[1] * sx)))
            m = cv2.resize(m, (w, ch), interpolation=cv2.INTER_AREA) if w != m.shape[1] else m
            if cell is not None:
                off = (cell - w) / 2
                items.append(("char", (c, m), x + off, w))
                x += cell + ch * spacing
            else:
                items.append(("char", (c, m), x, w))
                x += w + ch * spacing
        x -= ch * spacing
    return items, x


def render_plate(rng, spec, fonts):
    """Draws spec flat. Returns the plate (RGB) and, per registration row,
    [(char, x0, y0, x1, y1)] of the ink of each character."""
    H = PLATE_H
    W = int(round(H * spec.aspect))
    img = background(rng, spec, W, H)
    left, right = int(H * 0.06), W - int(H * 0.06)
    rows_n = len(spec.rows)
    if spec.band:
        if spec.band == "brasil":
            bh = int(H * 0.2)
            cv2.rectangle(img, (0, 0), (W, bh), (0, 60, 160), -1)
            mk = caption_mask(fonts, fonts.pick(rng, "din"), "BRASIL", int(bh * 0.6))
            if mk is not None:
                paint(img, mk, W // 2 - mk.shape[1] // 2, int(bh * 0.2), (255, 255, 255))
        else:
            bw = int(H * (0.4 if rows_n == 1 else 0.3))
            left = draw_band(rng, img, spec, fonts, bw) + int(H * 0.05)
    if spec.right_band:
        right = draw_right_band(rng, img, spec, fonts, int(H * 0.4)) - int(H * 0.05)
    if spec.border is not None or rng.random() < 0.6:
        col = spec.border if spec.border is not None else tuple(int(c * 0.5) for c in spec.fg)
        t = max(1, int(H * rng.uniform(0.01, 0.03)))
        m = int(H * 0.02) + t // 2
        cv2.rectangle(img, (m, m), (W - m, H - m), col, t, cv2.LINE_AA)

    # Captions (state names, slogans, cities) above and below.
    top_used, bottom_used = 0.0, 0.0
    for cap in spec.captions:
        if cap.family == "caption" and cap.text.isupper() and rng.random() < 0.2:
            name = "lobster"
        else:
            name = fonts.pick(rng, cap.family)
        ch_ = max(6, int(H * cap.size))
        mk = caption_mask(fonts, name, cap.text, ch_, spacing=rng.uniform(0, 0.3) if rng.random() < 0.3 else 0.0)
        if mk is None:
            continue
        maxw = int((right - left) * 0.95)
        if mk.shape[1] > maxw:
            mk = cv2.resize(mk, (maxw, mk.shape[0]), interpolation=cv2.INTER_AREA)
        x = left + (right - left - mk.shape[1]) // 2
        if cap.pos == "top":
            y = int(H * (0.05 + top_used))
            top_used += cap.size + 0.03
        else:
            y = int(H * (0.95 - bottom_used) - ch_)
            bottom_used += cap.size + 0.03
        paint(img, mk, x, y, cap.color)

    # The registration.
    font = fonts.pick(rng, spec.family)
    stroke = 0
    sx = rng.uniform(0.8, 1.2)
    spacing = rng.uniform(0.04, 0.22)
    rows = []
    if rows_n == 1:
        ch = int(H * spec.char_h)
        free_top, free_bot = H * (0.05 + top_used), H * (0.95 - bottom_used)
        if spec.band == "brasil":
            free_top = max(free_top, H * 0.22)
        ch = int(min(ch, (free_bot - free_top) * 0.95))
        cy = [(free_top + free_bot) / 2 + rng.normal(0, H * 0.015)]
        chs = [ch]
    else:
        top = H * (0.06 + top_used * 0.5)
        bot = H * (0.94 - bottom_used * 0.5)
        gap = (bot - top) * 0.08
        ch = int(((bot - top) - gap) / 2 * 0.92)
        small = rng.random() < 0.3  # the upper row smaller, as on some plates
        chs = [int(ch * 0.75) if small else ch, ch]
        cy = [top + chs[0] / 2 + ch * 0.02, bot - chs[1] / 2 - ch * 0.02]
    if rng.random() < 0.3:
        stroke = int(rng.integers(1, 4))
    style = GlyphStyle(rng, spec.kind)
    for ri, (groups, seps) in enumerate(zip(spec.rows, spec.seps)):
        ch = max(8, chs[ri])
        items, width = layout_row(rng, fonts, spec, groups, seps, ch, font, stroke, sx, spacing, style)
        avail = right - left
        stacked = None
        if spec.stacked and ri == len(spec.rows) - 1:
            stacked = spec.stacked
            avail -= ch * 0.5
        scale = min(1.0, avail * 0.97 / max(1.0, width))
        x0 = left + (avail - width * scale) / 2 + rng.normal(0, avail * 0.01)
        y0 = int(round(cy[ri] - ch / 2))
        boxes = []
        shadow = spec.emboss
        for kind, payload, x, w in items:
            px = int(round(x0 + x * scale))
            if kind == "char":
                c, m = payload
                if scale < 1:
                    m = cv2.resize(m, (max(1, int(round(m.shape[1] * scale))), m.shape[0]), interpolation=cv2.INTER_AREA)
                if shadow:
                    off = max(1, ch // 30)
                    paint(img, m, px + off, y0 + off, tuple(int(v * 0.55) for v in spec.bg), 0.8)
                    paint(img, m, px - off, y0 - off, (255, 255, 255), 0.5)
                paint(img, m, px, y0, spec.fg)
                boxes.append((c, px, y0, px + m.shape[1], y0 + ch))
            elif kind == "dash":
                t = max(2, int(ch * 0.1))
                cv2.rectangle(img, (px, int(cy[ri] - t / 2)), (px + int(w * scale), int(cy[ri] + t / 2)), spec.fg, -1)
            elif kind == "dot":
                cv2.circle(img, (px + int(w * scale / 2), int(cy[ri])), max(2, int(ch * 0.08)), spec.fg, -1, cv2.LINE_AA)
            elif kind == "sticker":
                draw_sticker(rng, img, px, cy[ri], w * scale, ch)
            else:
                draw_emblem(rng, img, px, cy[ri], w * scale, spec)
        if stacked:
            sh = ch * 0.42
            sx0 = int(x0 + width * scale + ch * 0.15)
            for k, c in enumerate(stacked[:2]):
                m = glyph(fonts, font, c, int(sh))
                paint(img, m, sx0, int(y0 + k * ch * 0.52), spec.fg)
        rows.append(boxes)

    extras(rng, img, spec, rows)
    if rng.random() < (0.5 if spec.kind == "us" else 0.25):
        img, rows = frame(rng, img, rows, fonts)
    return img, rows


def frame(rng, img, rows, fonts):
    """A plastic or chrome frame around the plate, overlapping its edges,
    often with a dealer's name on its lower bar."""
    H, W = img.shape[:2]
    t, b, s = int(H * rng.uniform(0.04, 0.1)), int(H * rng.uniform(0.05, 0.2)), int(H * rng.uniform(0.03, 0.07))
    over = int(H * rng.uniform(0.0, 0.07))
    col = np.array(layouts.pick(rng, [(20, 20, 22), (60, 60, 60), (190, 190, 195), (140, 110, 40)], [5, 2, 2, 1]), np.float32)
    out = np.empty((H + t + b, W + 2 * s, 3), np.uint8)
    out[:] = col.astype(np.uint8)
    out[t:t + H, s:s + W] = img
    ring = np.ones(out.shape[:2], np.uint8)
    ring[t + over:t + H - over, s + over:s + W - over] = 0
    out[ring == 1] = col.astype(np.uint8)
    if rng.random() < 0.7:
        words = layouts.dealer_caption(rng).text
        mk = caption_mask(fonts, fonts.pick(rng, "caption"), words, max(6, int((b + over) * 0.55)))
        if mk is not None:
            maxw = int(W * 0.8)
            if mk.shape[1] > maxw:
                mk = cv2.resize(mk, (maxw, mk.shape[0]), interpolation=cv2.INTER_AREA)
            tc = (235, 235, 235) if col.mean() < 128 else (20, 20, 20)
            paint(out, mk, s + (W - mk.shape[1]) // 2, t + H - over + max(0, (b + over - mk.shape[0]) // 2), tc)
    rows = [[(c, x0 + s, y0 + t, x1 + s, y1 + t) for (c, x0, y0, x1, y1) in r] for r in rows]
    return out, rows


def extras(rng, img, spec, rows):
    """Screws, stickers and dirt on the plate."""
    H, W = img.shape[:2]
    if rng.random() < 0.5:  # screws, at the top, sometimes between characters
        y = int(H * rng.uniform(0.1, 0.25)) if rng.random() < 0.7 else int(H * 0.5)
        r = max(2, int(H * rng.uniform(0.025, 0.045)))
        for x in (W * rng.uniform(0.2, 0.35), W * rng.uniform(0.65, 0.8)):
            col = (int(rng.integers(60, 230)),) * 3
            cv2.circle(img, (int(x), y), r, col, -1, cv2.LINE_AA)
            cv2.line(img, (int(x) - r + 1, y), (int(x) + r - 1, y), (40, 40, 40), 1)
    if rng.random() < 0.35:  # stickers in the corners (registration, parking, inspection)
        for _ in range(int(rng.integers(1, 3))):
            w, h = int(H * rng.uniform(0.12, 0.22)), int(H * rng.uniform(0.1, 0.18))
            x = int(rng.choice([H * 0.06, W - H * 0.06 - w]))
            y = int(rng.choice([H * 0.05, H * 0.95 - h]))
            col = tuple(int(v) for v in rng.integers(0, 255, 3))
            cv2.rectangle(img, (x, y), (x + w, y + h), col, -1)
            cv2.putText(img, layouts.fill(rng, "DD"), (x + 2, y + h - 3), cv2.FONT_HERSHEY_SIMPLEX, h / 40, (255, 255, 255), 1, cv2.LINE_AA)
    if rng.random() < 0.3:  # dirt, splashes, scratches
        layer = np.zeros((H, W), np.float32)
        for _ in range(int(rng.integers(3, 40))):
            cv2.circle(layer, (int(rng.uniform(0, W)), int(rng.uniform(0, H))), int(rng.uniform(1, H * 0.08)), float(rng.uniform(0.2, 1)), -1)
        layer = cv2.GaussianBlur(layer, (0, 0), max(1, H * 0.01)) * rng.uniform(0.2, 0.6)
        dirt = np.array([90, 75, 55], np.float32) * rng.uniform(0.4, 1.2)
        a = np.clip(layer, 0, 0.8)[..., None]
        img[:] = (img * (1 - a) + dirt * a).astype(np.uint8)


def car_background(rng, w, h):
    """Around the plate: paint, a bumper, a recess, lights, other text."""
    # Most cars are white, black, grey or silver; the rest any colour.
    base = np.full(3, rng.uniform(10, 240), np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    if rng.random() < 0.3:
        base = rng.integers(0, 256, 3).astype(np.float32) * 0.8
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = base * (1 - t * rng.uniform(-0.5, 0.5))
    img = np.broadcast_to(img, (h, w, 3)).copy()
    for _ in range(int(rng.integers(0, 5))):
        y = int(rng.uniform(0, h))
        col = rng.integers(0, 256, 3).tolist()
        cv2.line(img, (0, y), (w, y + int(rng.normal(0, h * 0.05))), col, int(rng.uniform(1, max(2, h * 0.08))), cv2.LINE_AA)
    for _ in range(int(rng.integers(0, 3))):
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.uniform(5, w * 0.4)), y0 + int(rng.uniform(5, h * 0.3))), rng.integers(0, 256, 3).tolist(), -1)
    if rng.random() < 0.3:  # other text on the car
        txt = layouts.pick(rng, ["TOYOTA", "VOLVO", "AUDI", "4MATIC", "HYBRID", "TDI", "SERVICE", "TAXI", "ELECTRIC", "GT", "V6"])
        cv2.putText(img, txt, (int(rng.uniform(0, w * 0.6)), int(rng.uniform(h * 0.1, h))), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.3, 1.2), rng.integers(0, 256, 3).tolist(), int(rng.integers(1, 3)), cv2.LINE_AA)
    n = rng.normal(0, rng.uniform(2, 15), (h // 6 + 1, w // 6 + 1, 3)).astype(np.float32)
    img += cv2.resize(n, (w, h))
    return np.clip(img, 0, 255)


def homography(rng, w, h, yaw, pitch, roll):
    """Maps a w x h plate to a view turned by yaw and pitch (degrees, a
    pinhole camera) and rolled by roll."""
    f = max(w, h) * rng.uniform(1.2, 3.0)
    ry, rp, rr = map(math.radians, (yaw, pitch, roll))
    Ry = np.array([[math.cos(ry), 0, math.sin(ry)], [0, 1, 0], [-math.sin(ry), 0, math.cos(ry)]])
    Rx = np.array([[1, 0, 0], [0, math.cos(rp), -math.sin(rp)], [0, math.sin(rp), math.cos(rp)]])
    Rz = np.array([[math.cos(rr), -math.sin(rr), 0], [math.sin(rr), math.cos(rr), 0], [0, 0, 1]])
    R = Rz @ Rx @ Ry
    pts = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]])
    cam = (R @ pts.T).T + np.array([0, 0, f])
    proj = cam[:, :2] / cam[:, 2:3] * f
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return cv2.getPerspectiveTransform(src, proj.astype(np.float32))


def apply_h(Hm, pts):
    p = np.concatenate([np.asarray(pts, np.float64), np.ones((len(pts), 1))], 1) @ Hm.T
    return p[:, :2] / p[:, 2:3]


def char_height_sample(rng):
    """Character height in the scene, pixels: most between 14 and 40, down
    to 12 and up to 70."""
    return float(np.clip(np.exp(rng.normal(math.log(24), 0.45)), 12, 70))


def render_scene(rng, plate, rows, char_h=None):
    """Puts a flat plate into a scene. Returns the scene (BGR) and, per row,
    [(char, 4x2 corners)] in scene pixels."""
    if char_h is None:
        char_h = char_height_sample(rng)
    row_h = max(b[4] - b[2] for r in rows for b in r) if any(rows) else plate.shape[0] * 0.5
    s = char_h / row_h
    # Shrink the flat plate with area averaging close to its size in the
    # scene first, so that warping does not alias.
    pw, ph = plate.shape[1], plate.shape[0]
    pre = min(1.0, s * 1.5)
    small = cv2.resize(plate, (max(2, int(pw * pre)), max(2, int(ph * pre))), interpolation=cv2.INTER_AREA)
    yaw = rng.normal(0, 14) if rng.random() < 0.8 else rng.uniform(-40, 40)
    pitch = rng.normal(0, 8)
    roll = rng.normal(0, 4) if rng.random() < 0.85 else rng.uniform(-15, 15)
    sw, sh = small.shape[1], small.shape[0]
    Hm = homography(rng, sw, sh, yaw, pitch, roll)
    if rng.random() < 0.15:  # italic fonts, rolling shutters, lenses
        k = rng.uniform(-0.2, 0.2)
        Hm = Hm @ np.array([[1, -k, k * sh / 2], [0, 1, 0], [0, 0, 1.0]])
    scale2 = s / pre
    S = np.diag([scale2, scale2, 1.0])
    Hm = S @ Hm
    corners = apply_h(Hm, [[0, 0], [sw, 0], [sw, sh], [0, sh]])
    mn, mx = corners.min(0), corners.max(0)
    qw, qh = mx - mn
    W = int(max(96, qw * rng.uniform(1.2, 2.0)))
    Hh = int(max(64, qh * rng.uniform(1.4, 2.6)))
    ox = rng.uniform(0, max(1, W - qw)) - mn[0]
    oy = rng.uniform(0, max(1, Hh - qh)) - mn[1]
    T = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1.0]])
    Hm = T @ Hm
    scene = car_background(rng, W, Hh)
    if rng.random() < 0.5:  # the recess the plate sits in, a frame around it
        fr = apply_h(Hm, [[-sw * 0.04, -sh * 0.08], [sw * 1.04, -sh * 0.08], [sw * 1.04, sh * 1.12], [-sw * 0.04, sh * 1.12]])
        col = (np.ones(3) * rng.uniform(5, 80)).tolist() if rng.random() < 0.7 else rng.integers(100, 255, 3).tolist()
        cv2.fillPoly(scene, [fr.astype(np.int32)], col, cv2.LINE_AA)
    rgb = small[..., ::-1].astype(np.float32)
    warped = cv2.warpPerspective(rgb, Hm, (W, Hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = cv2.warpPerspective(np.ones((sh, sw), np.float32), Hm, (W, Hh), flags=cv2.INTER_LINEAR)
    scene = (scene * (1 - mask[..., None]) + warped * mask[..., None]).astype(np.float32)

    out_rows = []
    for r in rows:
        out = []
        for (c, x0, y0, x1, y1) in r:
            q = apply_h(Hm, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]) * pre)
            out.append((c, q))
        out_rows.append(out)

    plate_quad = apply_h(Hm, [[0, 0], [sw, 0], [sw, sh], [0, sh]])
    scene = light(rng, scene, mask)
    scene = degrade(rng, scene, char_h)
    return scene, out_rows, plate_quad


def light(rng, img, plate_mask):
    h, w = img.shape[:2]
    mode = layouts.pick(rng, ["day", "shadow", "glare", "night", "ir"], [5, 2, 1.2, 1, 1.5])
    if mode == "shadow":  # a shadow edge across the plate
        m = np.zeros((h, w), np.float32)
        x0 = rng.uniform(0, w)
        pts = np.array([(x0, 0), (x0 + rng.uniform(-w, w), h), (w * 2, h), (w * 2, 0)], np.int32)
        if rng.random() < 0.5:
            pts = np.array([(0, rng.uniform(0, h)), (w, rng.uniform(0, h)), (w, h * 2), (0, h * 2)], np.int32)
        cv2.fillPoly(m, [pts], 1.0)
        m = cv2.GaussianBlur(m, (0, 0), max(1, w * 0.01))
        img = img * (1 - m[..., None] * rng.uniform(0.3, 0.7))
    elif mode == "glare":
        m = np.zeros((h, w), np.float32)
        cv2.ellipse(m, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), (int(rng.uniform(w * 0.05, w * 0.3)), int(rng.uniform(h * 0.05, h * 0.3))), rng.uniform(0, 180), 0, 360, 1.0, -1)
        m = cv2.GaussianBlur(m, (0, 0), max(1, w * 0.03))
        img = img + m[..., None] * rng.uniform(80, 255)
    elif mode == "night":
        img = img * rng.uniform(0.15, 0.5) + img * plate_mask[..., None] * rng.uniform(0.0, 0.6)
    elif mode == "ir":  # infrared: grey, the retroreflective plate bright, the rest dark
        g = img[..., 0] * 0.1 + img[..., 1] * 0.3 + img[..., 2] * 0.6  # BGR: near infrared is closest to red
        g = g * rng.uniform(0.2, 0.6) + g * plate_mask * rng.uniform(0.4, 1.2)
        img = np.repeat(g[..., None], 3, 2)
    # White balance, then exposure, contrast and gamma as one table.
    if mode != "ir":
        img = img * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    gain, offset, gamma = rng.uniform(0.7, 1.3), rng.uniform(-30, 30), rng.uniform(0.7, 1.4)
    lut = np.clip(np.arange(256, dtype=np.float32) * gain + offset, 0, 255)
    lut = (255 * (lut / 255) ** gamma).astype(np.uint8)
    return cv2.LUT(img, lut)


def degrade(rng, img, char_h):
    """Blur, low resolution, noise and JPEG, as cameras and their encoders
    give them, kept to what leaves the characters legible to a person: a
    label must be readable in its crop, or the recogniser learns to guess."""
    img = img.astype(np.float32)
    budget = 1.0  # each degradation spends some; they do not all pile up
    if rng.random() < 0.3:  # motion
        k = int(rng.uniform(1, max(2, char_h * 0.12)))
        if k >= 2:
            ker = np.zeros((k * 2 + 1, k * 2 + 1), np.float32)
            a = math.radians(rng.normal(0, 20) if rng.random() < 0.7 else rng.uniform(0, 180))
            for t in np.linspace(-k, k, 4 * k + 1):
                ker[int(round(k + t * math.sin(a))), int(round(k + t * math.cos(a)))] = 1
            img = cv2.filter2D(img, -1, ker / ker.sum())
            budget -= k / max(1.0, char_h * 0.12)
    if rng.random() < 0.5 and budget > 0.2:  # focus
        sigma = rng.uniform(0.3, 0.3 + budget * max(0.1, char_h * 0.07))
        img = cv2.GaussianBlur(img, (0, 0), sigma)
        budget -= (sigma - 0.3) / max(0.1, char_h * 0.07)
    h, w = img.shape[:2]
    if rng.random() < 0.2 and budget > 0.3 and char_h > 16:  # captured smaller, shown larger
        f = rng.uniform(1.2, min(2.0, char_h / 12))
        img = cv2.resize(cv2.resize(img, (max(8, int(w / f)), max(8, int(h / f))), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.8:
        img = img + rng.normal(0, rng.uniform(1, 8), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.85:
        q = int(rng.uniform(25, 95))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def sample(rng, fonts, spec=None, char_h=None):
    """One random scene: (spec, scene BGR, rows of (char, corners), the
    plate's corners)."""
    if spec is None:
        spec = layouts.draw(rng)
    plate, rows = render_plate(rng, spec, fonts)
    scene, qrows, plate_quad = render_scene(rng, plate, rows, char_h)
    return spec, scene, qrows, plate_quad
