"""The recipe's own tests (make test runs them): every step of `make model`
on tiny data, so the recipe cannot rot. They use only the Debian fonts
(make deps installs them), the ONNX Runtime library and PP-OCR detector
that make deps fetched, and the Go tools built from this tree."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from anprtrain import data, export, fonts, layouts, render, train  # noqa: E402
from anprtrain import model as M  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = os.environ.get("ANPRD_DEPS_DIR", os.path.join(ROOT, ".deps"))


class Layouts(unittest.TestCase):
    def test_every_country_draws_plate_characters(self):
        rng = np.random.default_rng(3)
        for c in layouts.EUROPE:
            for _ in range(20):
                s = layouts.europe(rng, c)
                self.assertEqual(s.country, c)
                lab = s.label()
                self.assertTrue(lab, c)
                self.assertTrue(set(lab) <= set(layouts.CHARSET), (c, lab))
                self.assertTrue(all(r for r in s.label_rows()), (c, s.rows))
        for fn in (layouts.us, layouts.brazil, layouts.motorcycle):
            for _ in range(50):
                lab = fn(rng).label()
                self.assertTrue(lab and set(lab) <= set(layouts.CHARSET), lab)

    def test_band_codes_are_not_in_labels(self):
        # The band's code is drawn on the plate but is not the registration.
        rng = np.random.default_rng(4)
        f = render.Fonts(fonts.available(None, need_npm=False))
        spec = layouts.europe(rng, "SE")
        spec.rows, spec.seps, spec.band, spec.band_code = [["ABC", "123"]], [[" "]], "eu", "S"
        _, rows = render.render_plate(rng, spec, f)
        self.assertEqual("".join(c for c, *_ in rows[0]), "ABC123")


class GlyphStyles(unittest.TestCase):
    def setUp(self):
        self.f = render.Fonts(fonts.available(None, need_npm=False))
        self.font = "osp-din"

    def style(self, **kw):
        s = render.GlyphStyle(np.random.default_rng(0), "us")
        s.squeeze, s.weight, s.warp, s.w_apex = 0.0, 0.0, 0.0, 0.0
        for k, v in kw.items():
            setattr(s, k, v)
        return s

    def test_plain_style_is_the_font(self):
        m = render.glyph(self.f, self.font, "W", 40)
        self.assertTrue((self.style().apply(self.f, self.font, "W", m, 40) == m).all())

    def test_squeeze_narrows_wide_letters_only(self):
        h = render.glyph(self.f, self.font, "H", 40).shape[1]
        s = self.style(squeeze=1.0)
        w = s.apply(self.f, self.font, "W", render.glyph(self.f, self.font, "W", 40), 40)
        self.assertLessEqual(w.shape[1], h)
        self.assertEqual(w.shape[0], 40)
        one = render.glyph(self.f, self.font, "1", 40)
        self.assertEqual(s.apply(self.f, self.font, "1", one, 40).shape, one.shape)

    def test_weight_thickens_and_thins(self):
        m = render.glyph(self.f, self.font, "8", 40)
        ink = (m > 127).sum()
        bold = self.style(weight=1.5).apply(self.f, self.font, "8", m, 40)
        thin = self.style(weight=-1.5).apply(self.f, self.font, "8", m, 40)
        self.assertEqual(bold.shape[0], 40)
        self.assertEqual(thin.shape[0], 40)
        self.assertGreater((bold > 127).sum(), ink * 1.2)
        self.assertLess((thin > 127).sum(), ink * 0.8)

    def test_stroke_w_middle_reaches_its_apex(self):
        # The middle vertex of a W at apex 0.5 stops halfway up: the top
        # half of the middle column is empty; at apex 1 it is inked.
        for apex, inked in ((0.5, False), (1.0, True)):
            m = render.stroke_glyph(self.f, self.font, "W", 60, 40, apex)
            self.assertEqual(m.shape, (60, 40))
            top_mid = m[2:20, 18:22]
            self.assertEqual(bool((top_mid > 127).any()), inked, apex)
            self.assertTrue((m[-6:, 5:15] > 127).any())  # the left foot

    def test_warp_moves_ink_and_keeps_it(self):
        m = render.glyph(self.f, self.font, "B", 40)
        w = self.style(warp=0.03).apply(self.f, self.font, "B", m, 40)
        self.assertEqual(w.shape, m.shape)
        self.assertFalse((w == m).all())
        self.assertGreater((w > 127).sum(), (m > 127).sum() * 0.7)


class Recipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="anprtrain-test-")
        for tool in ("cropper", "onnxrun"):
            subprocess.run(["go", "build", "-o", os.path.join(cls.tmp, tool), "./train/" + tool], cwd=ROOT, check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_data_train_export(self):
        work = os.path.join(self.tmp, "work")
        n, logs = data.build(work, "tiny", 24, 11, "", os.path.join(self.tmp, "cropper"), DEPS, jobs=1, need_npm=False)
        self.assertGreater(n, 10, logs)
        self.assertIn("scenes 24", logs[0])
        z = np.load(os.path.join(work, "tiny.npz"))
        self.assertEqual(z["x"].shape[1:], (data.IN_H, data.IN_W, 3))
        self.assertTrue((z["n"] > 0).all())
        # The same scenes give the same crops: the set is seeded per scene.
        n2, _ = data.build(os.path.join(self.tmp, "again"), "tiny", 24, 11, "", os.path.join(self.tmp, "cropper"), DEPS, jobs=2, need_npm=False)
        z2 = np.load(os.path.join(self.tmp, "again", "tiny.npz"))
        self.assertEqual(n, n2)
        self.assertTrue((z["y"] == z2["y"]).all())

        for kind in ("ctc", "slots"):
            out = os.path.join(self.tmp, "out-" + kind)
            net, hist = train.run(kind, os.path.join(work, "tiny.npz"), os.path.join(work, "tiny.npz"), out,
                                  epochs=1, batch=8, seed=5, threads=1, log=lambda m: None)
            self.assertEqual(hist[-1]["epoch"], 1)
            self.assertTrue(os.path.exists(os.path.join(out, kind + ".ckpt")))
            path = os.path.join(out, "m.onnx")
            export.export(net, kind, path)
            diff = export.check(net, path, z["x"][:4], os.path.join(self.tmp, "onnxrun"), os.path.join(DEPS, "lib/libonnxruntime.so.1"))
            self.assertLess(diff, 1e-4)
            meta = export.summary(path)
            self.assertLessEqual(meta["opset"], 17)
            self.assertEqual(meta["metadata"]["anprd.charset"], layouts.CHARSET)
            self.assertEqual(meta["metadata"]["anprd.decode"], kind)

    def test_loss_falls(self):
        # A few steps on one batch must fit it better: the loss and the
        # gradients are wired.
        torch.manual_seed(0)
        net = M.build("ctc")
        rng = np.random.default_rng(0)
        f = render.Fonts(fonts.available(None, need_npm=False))
        xs, ys, ns = [], [], []
        for i in range(8):
            spec, scene, rows, _ = render.sample(rng, f, char_h=30)
            quad = data.line_quad(rows[0])
            crop = cv2_crop(scene, quad)
            xs.append(data.prep(crop))
            lab = "".join(c for c, _ in rows[0])[:12]
            y = np.zeros(12, np.int64)
            y[:len(lab)] = data.encode_label(lab)
            ys.append(y)
            ns.append(len(lab))
        x = M.to_input(np.stack(xs))
        y, n = torch.as_tensor(np.stack(ys)), torch.as_tensor(ns)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        first = None
        for _ in range(30):
            loss = train.loss_fn("ctc", net(x), y, n)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.assertLess(loss.item(), first * 0.7)


def cv2_crop(img, q):
    import cv2
    w = int(np.linalg.norm(q[1] - q[0]))
    h = int(np.linalg.norm(q[3] - q[0]))
    m = cv2.getPerspectiveTransform(q.astype(np.float32), np.float32([[0, 0], [w, 0], [w, h], [0, h]]))
    return cv2.warpPerspective(img, m, (max(1, w), max(1, h)))


if __name__ == "__main__":
    unittest.main()
