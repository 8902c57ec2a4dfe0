"""The training data: scenes rendered here, cut into crops by the reader's
own detector and cropping (the Go tool train/cropper), and packed into
arrays of the recogniser's input.

Each scene i of a set with seed s is drawn from its own generator seeded
with (s, i), so a set is the same whichever process renders which part
of it. build() runs `jobs` pipelines of renderer -> cropper side by side.
"""

import json
import os
import struct
import subprocess
import sys

import cv2
import numpy as np

from . import layouts, render

# The recogniser's input: a crop scaled to this height keeping its aspect,
# squeezed to the width if wider, padded on the right with mid grey if
# narrower (camera/ocr does the same in Go).
IN_H, IN_W = 32, 128
PAD = 128


def prep(img):
    """A BGR crop (any size) as the recogniser's input, HxWx3 uint8."""
    h, w = img.shape[:2]
    nw = int(min(IN_W, max(1, round(w * IN_H / h))))
    interp = cv2.INTER_AREA if h > IN_H else cv2.INTER_LINEAR
    r = cv2.resize(img, (nw, IN_H), interpolation=interp)
    out = np.full((IN_H, IN_W, 3), PAD, np.uint8)
    out[:, :nw] = r
    return out


def line_quad(chars):
    """The quad around a row's characters (their corners in reading order)."""
    first, last = chars[0][1], chars[-1][1]
    tl, bl = first[0], first[3]
    tr, br = last[1], last[2]
    # The tallest character sets the top and bottom.
    tops = np.array([c[1][0][1] for c in chars] + [c[1][1][1] for c in chars])
    bots = np.array([c[1][3][1] for c in chars] + [c[1][2][1] for c in chars])
    dy_top = min(0.0, tops.min() - min(tl[1], tr[1]))
    dy_bot = max(0.0, bots.max() - max(bl[1], br[1]))
    tl, tr = tl + [0, dy_top], tr + [0, dy_top]
    bl, br = bl + [0, dy_bot], br + [0, dy_bot]
    return np.array([tl, tr, br, bl], np.float64)


def grow(q, rng):
    """A ground-truth line with the margins a text detector's box has: each
    side moved out (or in) by its own share of the line's height."""
    h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    w = (np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[2] - q[3])) / 2
    if h <= 0 or w <= 0:
        return q
    u = (q[1] - q[0]) / max(1e-6, np.linalg.norm(q[1] - q[0]))
    v = (q[3] - q[0]) / max(1e-6, np.linalg.norm(q[3] - q[0]))
    l, r, t, b = rng.uniform(-0.05, 0.35, 4) * h
    out = q.copy()
    out[0] += -l * u - t * v
    out[1] += r * u - t * v
    out[2] += r * u + b * v
    out[3] += -l * u + b * v
    return out


def grow_plate(q, rng):
    """A plate's corners with a margin of its own: -2% to +8% of its height
    on each side."""
    q = np.asarray(q, np.float64)
    h = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    c = q.mean(0)
    out = q.copy()
    for k in range(4):
        d = q[k] - c
        out[k] = q[k] + d / max(1e-6, np.linalg.norm(d)) * rng.uniform(-0.02, 0.08) * h
    return out


def scene_record(i, seed, fonts, extra_share=0.4, whole_share=0.12):
    rng = np.random.default_rng([seed, i])
    spec, scene, rows, plate_quad = render.sample(rng, fonts)
    h, w = scene.shape[:2]
    # The lane's camera.min_plate_width: plates in a lane are mostly wider
    # than it, sometimes narrower.
    xs = np.concatenate([q[:, 0] for r in rows for _, q in r]) if any(rows) else np.array([0, w])
    plate_w = max(8.0, (xs.max() - xs.min()) / 0.8)
    hdr = {"id": int(i), "w": int(w), "h": int(h), "min_plate_width": int(max(40, plate_w * rng.uniform(0.45, 1.5))),
           "rows": [], "extra": []}
    for r in rows:
        if not r:
            continue
        text = "".join(c for c, _ in r)
        hdr["rows"].append({"text": text, "chars": [q.reshape(-1).tolist() for _, q in r]})
        if rng.random() < extra_share:
            hdr["extra"].append({"label": text, "quad": grow(line_quad(r), rng).reshape(-1).tolist()})
    # A whole plate as one crop, as plate crops come (anprctl read -crop,
    # sets of cut-out plates): band, border, captions and all.
    if len(hdr["rows"]) == 1 and rng.random() < whole_share:
        hdr["extra"].append({"label": hdr["rows"][0]["text"], "quad": grow_plate(plate_quad, rng).reshape(-1).tolist()})
    return hdr, np.ascontiguousarray(scene)


def write_scenes(out, start, stop, seed, fonts):
    for i in range(start, stop):
        hdr, scene = scene_record(i, seed, fonts)
        b = json.dumps(hdr).encode()
        out.write(struct.pack("<I", len(b)))
        out.write(b)
        px = scene.tobytes()
        out.write(struct.pack("<I", len(px)))
        out.write(px)
    out.flush()


def read_crops(path):
    """Yields (header dict, BGR crop) from a cropper output file; a record
    cut short at the end (a file still being written) ends it."""
    with open(path, "rb") as f:
        while True:
            n = f.read(4)
            if len(n) < 4:
                return
            b = f.read(struct.unpack("<I", n)[0])
            m = f.read(4)
            if len(m) < 4:
                return
            px = f.read(struct.unpack("<I", m)[0])
            try:
                hdr = json.loads(b)
                px = np.frombuffer(px, np.uint8).reshape(hdr["h"], hdr["w"], 3)
            except ValueError:
                return
            yield hdr, px


def encode_label(text):
    return [layouts.CHARSET.index(c) + 1 for c in text]


def pack(crop_files, out_path, max_len=12):
    """Packs crops into one .npz: x (N, H, W, 3) uint8, y (N, max_len) class
    ids (0 pads), n (N,) label lengths, kind (N,) 0 det / 1 extra."""
    xs, ys, ns, kinds = [], [], [], []
    for p in crop_files:
        for hdr, px in read_crops(p):
            lab = hdr["label"]
            if not lab or len(lab) > max_len or px.shape[0] < 4 or px.shape[1] < 4:
                continue
            xs.append(prep(px))
            y = np.zeros(max_len, np.int16)
            y[:len(lab)] = encode_label(lab)
            ys.append(y)
            ns.append(len(lab))
            kinds.append(0 if hdr["kind"] == "det" else 1)
    np.savez(out_path, x=np.stack(xs), y=np.stack(ys), n=np.array(ns, np.int16), kind=np.array(kinds, np.int8))
    return len(xs)


def build(workdir, name, n, seed, fonts_dir, cropper, deps_dir, jobs=2, need_npm=True):
    """Renders n scenes with seed, cuts them with the cropper in `jobs`
    pipelines, and packs the crops into workdir/name.npz."""
    os.makedirs(workdir, exist_ok=True)
    procs = []
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = []
    for k in range(jobs):
        out = os.path.join(workdir, f"{name}-{k}.crops")
        files.append(out)
        gen = subprocess.Popen([sys.executable, "-m", "anprtrain.data", "scenes", str(bounds[k]), str(bounds[k + 1]), str(seed),
                                fonts_dir, "1" if need_npm else "0"], stdout=subprocess.PIPE, env=env)
        cut = subprocess.Popen([cropper, "-onnxruntime", os.path.join(deps_dir, "lib/libonnxruntime.so.1"),
                                "-models", os.path.join(deps_dir, "models"), "-out", out], stdin=gen.stdout,
                               stderr=subprocess.PIPE, text=True)
        gen.stdout.close()
        procs.append((gen, cut))
    logs = []
    for gen, cut in procs:
        _, err = cut.communicate()
        gen.wait()
        if gen.returncode != 0 or cut.returncode != 0:
            raise RuntimeError(f"data: render or cropper failed ({gen.returncode}, {cut.returncode}): {err}")
        logs.append(err.strip())
    count = pack(files, os.path.join(workdir, name + ".npz"))
    return count, logs


def main(argv):
    if argv[0] == "scenes":
        from . import fonts as F
        start, stop, seed, fonts_dir, need = int(argv[1]), int(argv[2]), int(argv[3]), argv[4], argv[5] == "1"
        fonts = render.Fonts(F.available(fonts_dir, need_npm=need))
        write_scenes(sys.stdout.buffer, start, stop, seed, fonts)
    else:
        raise SystemExit("usage: python3 -m anprtrain.data scenes START STOP SEED FONTS_DIR NEED_NPM")


if __name__ == "__main__":
    main(sys.argv[1:])
