"""Make the demo datasets in examples/demo/: small, synthetic, in the real MIMIC-CXR and IU-Xray layouts.

    python examples/make_demo.py [--out examples/demo]

Everything is made here, from a fixed seed, so the output is the same on every run: chest radiographs drawn
from simple anatomy (lungs, heart, mediastinum, spine, ribs, clavicles, diaphragm, soft tissue) with the
findings each report describes, written as real DICOM files (MIMIC-CXR) or grayscale PNGs (IU-Xray); reports
written for this project in each dataset's text layout; and the CSVs / XML beside them. A few inputs are
broken on purpose so that ingest's quarantine has something to show; examples/demo/README.md (also written
here) lists them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

HERE = Path(__file__).resolve().parent
SEED = 20250402

# ============================================================================================================
# Drawing: an attenuation map from simple anatomy; larger = denser = brighter on display (MONOCHROME2 sense)


@dataclass
class Look:
    """What one picture shows. Sides are the patient's: on a frontal view "right" is the image's left."""

    view: str = "PA"  # PA, AP, LATERAL, LL
    heart: float = 1.0  # heart width factor: 1 normal, about 1.3 enlarged
    effusion: dict[str, float] = field(default_factory=dict)  # side -> size 0..1
    opacity: list[tuple[str, str, float]] = field(default_factory=list)  # (side, upper|mid|lower, size 0..1)
    edema: float = 0.0
    atelectasis: list[str] = field(default_factory=list)  # sides
    pneumothorax: dict[str, float] = field(default_factory=dict)  # side -> size 0..1
    nodule: list[tuple[str, str]] = field(default_factory=list)  # (side, zone)
    devices: list[str] = field(default_factory=list)  # ett, ngt, cvc, pacer, wires, chest_tube
    fracture: list[str] = field(default_factory=list)  # sides with a broken lateral rib
    pleural_thickening: list[str] = field(default_factory=list)  # sides, apical cap
    volume: float = 1.0  # < 1: low lung volumes, the diaphragm rides high
    mediastinum: float = 1.0  # width factor of the upper mediastinum


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge padding."""
    r = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    p = np.pad(a, ((r, r), (0, 0)), mode="edge")
    out = sum(k[i] * p[i : i + a.shape[0]] for i in range(2 * r + 1))
    p = np.pad(out, ((0, 0), (r, r)), mode="edge")
    return sum(k[i] * p[:, i : i + a.shape[1]] for i in range(2 * r + 1))


def _chaikin(pts: np.ndarray, rounds: int) -> np.ndarray:
    for _ in range(rounds):  # corner cutting on a closed curve: rounds the outline
        nxt = np.roll(pts, -1, axis=0)
        pts = np.stack([0.75 * pts + 0.25 * nxt, 0.25 * pts + 0.75 * nxt], 1).reshape(-1, 2)
    return pts


def mirror(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(-u, v) for u, v in pts]


class Canvas:
    """Shape coordinates: u from -1 (image left) to 1 (image right), v from 0 (top) to 1 (bottom)."""

    def __init__(self, h: int, w: int) -> None:
        self.h, self.w = h, w
        self.ua = (np.arange(w) + 0.5) / w * 2 - 1
        self.va = (np.arange(h) + 0.5) / h
        self.U, self.V = np.meshgrid(self.ua, self.va)
        self.px = 2.0 / w
        self.vscale = 2 * h / w  # one v unit in u units, so that distances are isotropic on the image

    def zeros(self) -> np.ndarray:
        return np.zeros((self.h, self.w))

    def _window(self, p: np.ndarray, pad: float) -> tuple[int, int, int, int]:
        """Row and column bounds of the points' bounding box, grown by ``pad`` (u units)."""
        c0, c1 = np.searchsorted(self.ua, p[:, 0].min() - pad), np.searchsorted(self.ua, p[:, 0].max() + pad)
        pad_v = pad / self.vscale
        r0 = np.searchsorted(self.va, p[:, 1].min() - pad_v)
        r1 = np.searchsorted(self.va, p[:, 1].max() + pad_v)
        return r0, r1, c0, c1

    def distance(self, pts, pad: float) -> tuple[tuple[slice, slice], list[np.ndarray]]:
        """Distance (u units) to each segment of a polyline, within its bounding box grown by ``pad``."""
        p = np.asarray(pts, float)
        r0, r1, c0, c1 = self._window(p, pad + 3 * self.px)
        U, V = self.U[r0:r1, c0:c1], self.V[r0:r1, c0:c1] * self.vscale
        p[:, 1] *= self.vscale
        out = []
        for (a0, b0), (a1, b1) in zip(p[:-1], p[1:], strict=True):
            du, dv = a1 - a0, b1 - b0
            t = np.clip(((U - a0) * du + (V - b0) * dv) / (du * du + dv * dv or 1e-12), 0, 1)
            out.append(np.hypot(U - a0 - t * du, V - b0 - t * dv))
        return (slice(r0, r1), slice(c0, c1)), out

    def _profile(self, d: np.ndarray, width: float, soft: float) -> np.ndarray:
        return np.clip((width / 2 - d) / max(width * soft, self.px) + 0.5, 0, 1)

    def stroke(self, pts, width, soft: float = 0.5) -> np.ndarray:
        """A polyline, 0..1 with a soft edge; ``width`` in u units, one value or one per segment (a taper)."""
        widths = np.broadcast_to(np.asarray(width, float), (len(pts) - 1,))
        window, dists = self.distance(pts, widths.max())
        out = self.zeros()
        if out[window].size:
            out[window] = np.max([(w / widths[0]) ** 0.7 * self._profile(d, w, soft)  # thinner is fainter
                                  for d, w in zip(dists, widths, strict=True)], axis=0)
        return out

    def bone(self, pts, width: float) -> np.ndarray:
        """A tubular bone seen end-on at its edges: a faint shaft with brighter cortical margins."""
        window, dists = self.distance(pts, width)
        out = self.zeros()
        if out[window].size:
            d = np.min(dists, axis=0)
            shaft = self._profile(d, width, 0.4)
            cortex = np.clip(self._profile(d, width * 1.06, 0.2) - self._profile(d, width * 0.62, 0.2), 0, 1)
            out[window] = 0.6 * shaft + 0.4 * cortex
        return out

    def polygon(self, pts, soft: float = 0.02, rounds: int = 3) -> np.ndarray:
        """A filled closed outline, rounded by corner cutting, its edge softened by a blur."""
        p = _chaikin(np.asarray(pts, float), rounds)
        sigma = max(0.4, soft / self.px / 2.5)
        r0, r1, c0, c1 = self._window(p, (3 * sigma + 2) * self.px)
        r0, c0 = max(r0, 0), max(c0, 0)
        out = self.zeros()
        if r1 <= r0 or c1 <= c0:
            return out
        va, ua = self.va[r0:r1], self.ua[c0:c1]
        toggles = np.zeros((r1 - r0, c1 - c0 + 1), np.int32)
        # scanline fill: toggle at every crossing, then a running parity along each row
        for (a0, b0), (a1, b1) in zip(p, np.roll(p, -1, axis=0), strict=True):
            lo, hi = min(b0, b1), max(b0, b1)
            i0, i1 = np.searchsorted(va, lo), np.searchsorted(va, hi)
            if i1 > i0:
                rows = np.arange(i0, i1)
                x = a0 + (va[rows] - b0) * (a1 - a0) / (b1 - b0)
                np.add.at(toggles, (rows, np.searchsorted(ua, x)), 1)
        inside = (np.cumsum(toggles[:, :-1], axis=1) & 1).astype(float)
        out[r0:r1, c0:c1] = blur(inside, sigma)
        return out

    def blob(self, cu: float, cv: float, r: float) -> np.ndarray:
        return np.exp(-((self.U - cu) ** 2 + ((self.V - cv) * self.vscale) ** 2) / (2 * r * r))


def vessels(c: Canvas, rng, hilum: tuple[float, float], sgn: int, n: int, scale: float = 1.0) -> np.ndarray:
    """Lung markings: branches from the hilum, thinning and fading outwards."""
    out = c.zeros()
    for _ in range(n):
        pts = [(hilum[0] + rng.normal(0, 0.02), hilum[1] + rng.normal(0, 0.03))]
        ang = rng.uniform(-1.3, 1.2)
        step = rng.uniform(0.05, 0.08) * scale
        for _ in range(6):
            ang += rng.normal(0, 0.22)
            pts.append((pts[-1][0] + sgn * np.cos(ang) * step, pts[-1][1] + np.sin(ang) * step * 0.9))
        out = np.maximum(out, c.stroke(pts, 0.022 * 0.78 ** np.arange(6), soft=0.8))
    return out


def _lung_outline(side: str, lift: float) -> list[tuple[float, float]]:
    base = 0.72 - lift + (0.03 if side == "left" else 0.0)  # the left hemidiaphragm sits a little lower
    pts = [(-0.34, 0.11), (-0.5, 0.15), (-0.66, 0.25), (-0.76, 0.38), (-0.81, 0.52), (-0.83, 0.66),
           (-0.82, base + 0.08), (-0.79, base + 0.1), (-0.66, base + 0.05), (-0.5, base + 0.01),
           (-0.34, base - 0.005), (-0.2, base + 0.02), (-0.13, 0.6), (-0.12, 0.45), (-0.1, 0.3),
           (-0.14, 0.2), (-0.24, 0.13)]
    return pts if side == "right" else mirror(pts)


def _frontal_devices(look: Look, c: Canvas, base: float) -> np.ndarray:
    dev = c.zeros()
    if "ett" in look.devices:  # endotracheal tube, tip above the carina
        dev = np.maximum(dev, c.stroke([(0.0, -0.02), (0.0, 0.28)], 0.016, 0.3))
    if "ngt" in look.devices:  # nasogastric tube into the stomach
        pts = [(0.01, -0.02), (0.03, 0.3), (0.04, base), (0.18, base + 0.1), (0.32, base + 0.13)]
        dev = np.maximum(dev, 0.8 * c.stroke(pts, 0.012, 0.3))
    if "cvc" in look.devices:  # right internal jugular line to the superior vena cava
        pts = [(-0.24, -0.02), (-0.19, 0.12), (-0.11, 0.22), (-0.08, 0.35)]
        dev = np.maximum(dev, 0.9 * c.stroke(pts, 0.011, 0.3))
    if "pacer" in look.devices:  # generator over the left chest, leads to the right heart
        dev = np.maximum(dev, c.polygon([(0.45, 0.17), (0.6, 0.16), (0.61, 0.23), (0.46, 0.24)], 0.01))
        pts = [(0.47, 0.2), (0.3, 0.2), (0.1, 0.28), (-0.06, 0.4), (-0.03, 0.55), (0.15, base - 0.02)]
        dev = np.maximum(dev, 0.9 * c.stroke(pts, 0.01, 0.3))
    if "wires" in look.devices:  # sternotomy wires over the midline
        for k in range(5):
            cv = 0.3 + k * 0.065
            dev = np.maximum(dev, 0.95 * c.stroke([(-0.03, cv), (0.03, cv + 0.01)], 0.014, 0.3))
    if "chest_tube" in look.devices:  # right chest tube from the lateral wall up to the apex
        pts = [(-0.98, 0.62), (-0.78, 0.55), (-0.62, 0.4), (-0.52, 0.22), (-0.42, 0.15)]
        dev = np.maximum(dev, 0.85 * c.stroke(pts, 0.03, 0.3) - 0.5 * c.stroke(pts, 0.012, 0.3))
    return dev


def frontal(look: Look, c: Canvas, rng) -> np.ndarray:
    """PA or AP view."""
    U, V = c.U, c.V
    vol = look.volume * (0.94 if look.view == "AP" else 1.0)
    lift = (1 - vol) * 0.5
    base = 0.72 - lift
    body_pts = [(-0.2, -0.05), (-0.22, 0.06), (-0.5, 0.1), (-0.85, 0.15), (-0.97, 0.25), (-0.95, 0.6),
                (-0.9, 1.05)]
    body = c.polygon(body_pts + mirror(body_pts)[::-1], soft=0.03)
    D = body * (0.45 + 0.25 * np.sqrt(np.clip(1 - U**2, 0, 1)) + 0.1 * V)  # thicker centrally and low down

    lung = {s: c.polygon(_lung_outline(s, lift), soft=0.015) for s in ("right", "left")}
    lungs = lung["right"] + lung["left"]
    hf = look.heart
    heart = c.polygon([(-0.12, 0.44), (-0.2, 0.5), (-0.26 * hf**0.5, 0.6), (-0.25 * hf**0.5, base),
                       (-0.1, base + 0.06), (0.2, base + 0.08), (0.42 * hf, base + 0.05),
                       (0.47 * hf, base - 0.04), (0.44 * hf, 0.58), (0.33 * hf, 0.48), (0.2, 0.42),
                       (0.05, 0.41)], soft=0.025)
    mw = 0.12 * look.mediastinum + (0.02 if look.view == "AP" else 0)
    medi = c.polygon([(-mw, 0.08), (mw, 0.08), (mw + 0.02, 0.24), (0.19, 0.27), (0.2, 0.33),
                      (mw + 0.03, 0.37), (mw + 0.05, 0.45), (-mw - 0.02, 0.45), (-mw - 0.03, 0.3)], soft=0.02)
    solid = np.clip(heart + medi, 0, 1)

    air = 0.42 - 0.12 * np.clip(V - 0.45, 0, None) - 0.05 * np.clip(0.3 - np.abs(U), 0, None)
    ptx, marks = c.zeros(), c.zeros()
    for side, sgn in (("right", -1), ("left", 1)):
        m = vessels(c, rng, (sgn * 0.2, 0.43), sgn, 12)
        if side in look.pneumothorax:  # a lucent rim without markings, edged by the visceral pleural line
            s = look.pneumothorax[side]
            edge = [(sgn * 0.3, 0.13), (sgn * (0.55 - 0.15 * s), 0.2), (sgn * (0.68 - 0.22 * s), 0.35),
                    (sgn * (0.72 - 0.22 * s), 0.45 + 0.25 * s), (sgn * 0.8, 0.55 + 0.3 * s)]
            wall = [(sgn * 0.2, 0.05), (sgn * 0.7, 0.12), (sgn * 0.95, 0.3), (sgn * 0.95, 0.6 + 0.3 * s)]
            region = c.polygon(edge + wall[::-1], soft=0.01) * lung[side]
            ptx += region
            m = m * (1 - region)
            D += 0.09 * c.stroke(edge, 0.012, soft=0.3) * lung[side]
        marks += m
    D -= air * lungs * (1 - 0.65 * solid) * (1 + 0.25 * ptx)
    D += 0.07 * marks * lungs * (1 - solid)
    D += 0.27 * solid * body
    D -= 0.13 * c.stroke([(0.0, -0.02), (0.0, 0.2), (0.01, 0.36)], 0.07, soft=0.5) * body  # trachea
    for end in ((-0.1, 0.43), (0.13, 0.44)):  # main bronchi
        D -= 0.09 * c.stroke([(0.01, 0.36), end], 0.045, 0.5)

    dome_r, dome_l = _lung_outline("right", lift)[6:12], _lung_outline("left", lift)[6:12]
    abdomen = c.polygon([(-0.95, 1.05), (-0.95, dome_r[0][1] + 0.02), *dome_r[1:], (0, base + 0.04),
                         *dome_l[::-1][:-1], (0.95, dome_l[0][1] + 0.02), (0.95, 1.05)], soft=0.02) * body
    D += 0.22 * abdomen * (1 - solid)
    bubble = [(0.22, base + 0.1), (0.42, base + 0.09), (0.45, base + 0.14), (0.25, base + 0.15)]  # stomach
    D -= 0.12 * c.polygon(bubble, 0.02)

    # bones: spine through the mediastinum, clavicles, posterior and anterior ribs, scapular edges
    spine = c.polygon([(-0.07, 0.0), (0.07, 0.0), (0.075, 1.05), (-0.075, 1.05)], soft=0.02)
    D += spine * (0.03 + 0.05 * (0.5 + 0.5 * np.cos(2 * np.pi * V / 0.06))) * (1 - 0.3 * solid)
    for sgn in (-1, 1):
        clavicle = [(sgn * 0.05, 0.17), (sgn * 0.25, 0.15), (sgn * 0.45, 0.12), (sgn * 0.64, 0.115)]
        D += 0.15 * c.stroke(clavicle, 0.045)
        D += 0.04 * c.stroke([(sgn * 0.9, 0.17), (sgn * 0.78, 0.3), (sgn * 0.8, 0.45)], 0.03)
    for k in range(10):
        v0 = 0.12 + k * 0.062 * (1 - lift)
        for side, sgn in (("right", -1), ("left", 1)):
            pts = [(sgn * 0.07, v0), (sgn * 0.22, v0 - 0.02), (sgn * 0.45, v0 + 0.01),
                   (sgn * 0.66, v0 + 0.07), (sgn * 0.8, v0 + 0.15), (sgn * 0.86, v0 + 0.24)]
            rib = 0.1 * c.bone(pts, 0.032)
            if k == 6 and side in look.fracture:  # a gap with a step across the lateral arc
                gap = [(sgn * 0.7, v0 + 0.04), (sgn * 0.74, v0 + 0.05), (sgn * 0.76, v0 + 0.16),
                       (sgn * 0.72, v0 + 0.15)]
                rib *= 1 - c.polygon(gap, soft=0.006, rounds=0)
                rib += 0.05 * c.stroke([(sgn * 0.74, v0 + 0.12), (sgn * 0.8, v0 + 0.165)], 0.03, 0.3)
            D += rib * body
    for k in range(6):
        v0 = 0.19 + k * 0.07 * (1 - lift)
        for sgn in (-1, 1):
            anterior = [(sgn * 0.84, v0), (sgn * 0.6, v0 + 0.05), (sgn * 0.35, v0 + 0.11)]
            D += 0.02 * c.stroke(anterior, 0.04) * body

    # findings
    for side, size in look.effusion.items():  # dependent fluid with a meniscus climbing the lateral wall
        sgn = -1 if side == "right" else 1
        level = base + 0.09 - 0.3 * size - 0.35 * np.clip(sgn * U - 0.45, 0, None) ** 1.5
        D += 0.36 * lung[side] * np.clip(0.5 + (V - level) / 0.03, 0, 1) * (1 - solid)
    for side, zone, size in look.opacity:  # patchy airspace opacity over a mottled texture
        sgn = -1 if side == "right" else 1
        cv = {"upper": 0.27, "mid": 0.45, "lower": 0.6 - lift}[zone]
        region = np.exp(-((U - sgn * 0.48) ** 2 / 0.04 + ((V - cv) * c.vscale) ** 2 / (0.05 * (0.6 + size))))
        texture = blur(rng.normal(0, 1, U.shape), 2.2)
        texture = np.clip((texture - texture.mean()) / texture.std() + 0.3, 0, None)
        patch = sum(0.6 * c.blob(sgn * rng.uniform(0.3, 0.68), cv + rng.normal(0, 0.045),
                                 rng.uniform(0.02, 0.05)) for _ in range(22))
        D += 0.22 * size * np.clip(region * texture * 0.7 + patch * region, 0, 1.3) * lung[side]
    if look.edema:  # perihilar haze and thickened markings
        for side, sgn in (("right", -1), ("left", 1)):
            haze = np.exp(-((U - sgn * 0.22) ** 2 / 0.09 + (V - 0.47) ** 2 / 0.03))
            D += 0.2 * look.edema * haze * lung[side]
        D += 0.06 * look.edema * marks * lungs
    for side in look.atelectasis:  # plate-like band above the hemidiaphragm
        sgn = -1 if side == "right" else 1
        pts = [(sgn * 0.25, base - 0.09), (sgn * 0.45, base - 0.07), (sgn * 0.65, base - 0.03)]
        D += 0.14 * c.stroke(pts, 0.025) * lung[side]
    for side, zone in look.nodule:
        sgn = -1 if side == "right" else 1
        cv = {"upper": 0.27, "mid": 0.44, "lower": 0.58}[zone]
        D += 0.15 * c.stroke([(sgn * 0.47, cv), (sgn * 0.47, cv)], 0.06, soft=0.4)
    for side in look.pleural_thickening:  # apical cap along the chest wall
        sgn = -1 if side == "right" else 1
        cap = [(sgn * 0.3, 0.125), (sgn * 0.5, 0.16), (sgn * 0.66, 0.26)]
        D += 0.1 * c.stroke(cap, 0.035, 0.5) * lung[side]
    return D + 0.5 * _frontal_devices(look, c, base)


def lateral(look: Look, c: Canvas, rng) -> np.ndarray:
    """Lateral view: anterior to the image left, the spine to the right."""
    U, V = c.U, c.V
    lift = (1 - look.volume) * 0.5
    base = 0.74 - lift
    body = c.polygon([(-0.35, -0.05), (-0.5, 0.08), (-0.72, 0.22), (-0.84, 0.45), (-0.86, 1.05), (0.86, 1.05),
                      (0.87, 0.4), (0.8, 0.15), (0.62, -0.05)], soft=0.03)
    D = body * (0.5 + 0.15 * V)
    D += 0.12 * c.polygon([(-0.6, -0.05), (0.3, -0.05), (0.2, 0.22), (-0.45, 0.25)], soft=0.1)  # raised arms
    lung = c.polygon([(0.0, 0.1), (-0.3, 0.14), (-0.6, 0.25), (-0.7, 0.4), (-0.7, 0.55), (-0.66, base - 0.02),
                      (-0.4, base - 0.01), (-0.1, base + 0.01), (0.2, base + 0.04), (0.45, base + 0.1),
                      (0.6, base + 0.13), (0.63, 0.6), (0.58, 0.35), (0.42, 0.17), (0.2, 0.11)], soft=0.02)
    hf = look.heart
    heart = c.polygon([(-0.66, base - 0.02), (-0.68, 0.56), (-0.5, 0.45), (-0.2, 0.43),
                       (-0.02 + 0.1 * (hf - 1), 0.5), (0.08 + 0.15 * (hf - 1), base - 0.06),
                       (0.0, base + 0.03), (-0.3, base + 0.02)], soft=0.04)
    D -= (0.36 - 0.1 * np.clip(V - 0.5, 0, None)) * lung * (1 - 0.55 * heart)
    D += 0.08 * heart
    marks = vessels(c, rng, (0.0, 0.43), 1, 6, 0.9) + vessels(c, rng, (0.0, 0.43), -1, 6, 0.9)
    D += 0.05 * np.clip(marks, 0, 1) * lung * (1 - heart)
    D -= 0.1 * c.stroke([(0.2, -0.05), (0.15, 0.18), (0.08, 0.38)], 0.07, soft=0.6) * body  # trachea
    for k in range(14):  # vertebral bodies, then posterior elements behind them
        cv = 0.02 + k * 0.072
        cu = 0.66 + 0.04 * np.sin(cv * 3)
        D += 0.1 * c.polygon([(cu - 0.09, cv - 0.028), (cu + 0.07, cv - 0.03), (cu + 0.075, cv + 0.028),
                              (cu - 0.085, cv + 0.03)], soft=0.012, rounds=0)
    D += 0.04 * c.stroke([(0.84, 0.0), (0.86, 0.5), (0.84, 1.0)], 0.08, soft=0.8)
    D += 0.12 * c.stroke([(-0.62, 0.18), (-0.73, 0.38), (-0.77, 0.6)], 0.035, soft=0.4)  # sternum
    for k in range(8):
        cv = 0.2 + k * 0.07
        D += 0.025 * c.stroke([(0.62, cv), (0.35, cv + 0.08), (0.0, cv + 0.13)], 0.025) * body
    dome = c.polygon([(-0.9, base), (-0.4, base - 0.005), (-0.1, base + 0.01), (0.2, base + 0.045),
                      (0.45, base + 0.1), (0.62, base + 0.14), (0.9, base + 0.14), (0.9, 1.05), (-0.9, 1.05)],
                     soft=0.015)
    D += 0.16 * dome * body * (1 - lung)
    for size in look.effusion.values():  # fluid fills the posterior sulcus first
        level = base + 0.13 - 0.28 * size - 0.25 * np.clip(U - 0.3, 0, None)
        D += 0.33 * lung * np.clip(0.5 + (V - level) / 0.03, 0, 1) * np.clip(0.5 + (U + 0.2) / 0.3, 0, 1)
    for _side, zone, size in look.opacity:
        cv = {"upper": 0.3, "mid": 0.45, "lower": 0.6 - lift}[zone]
        patch = sum(c.blob(rng.uniform(-0.1, 0.4), cv + rng.normal(0, 0.04),
                           rng.uniform(0.04, 0.09) * (0.7 + 0.5 * size)) for _ in range(12))
        D += 0.2 * size * (1 - np.exp(-0.8 * patch)) * lung
    if look.edema:
        D += 0.14 * look.edema * np.exp(-((U - 0.05) ** 2 / 0.12 + (V - 0.45) ** 2 / 0.04)) * lung
    dev = c.zeros()
    if "ett" in look.devices:
        dev = np.maximum(dev, c.stroke([(0.2, -0.02), (0.15, 0.18), (0.11, 0.3)], 0.016, 0.3))
    if "ngt" in look.devices:
        dev = np.maximum(dev, 0.8 * c.stroke([(0.28, -0.02), (0.3, 0.4), (0.25, base + 0.12)], 0.012, 0.3))
    if "pacer" in look.devices:
        dev = np.maximum(dev, c.polygon([(-0.8, 0.17), (-0.68, 0.16), (-0.67, 0.22), (-0.79, 0.23)], 0.01))
        leads = [(-0.7, 0.2), (-0.4, 0.32), (-0.25, 0.5), (-0.4, base - 0.05)]
        dev = np.maximum(dev, 0.9 * c.stroke(leads, 0.01, 0.3))
    if "wires" in look.devices:
        for k in range(5):
            wire = [(-0.78, 0.3 + k * 0.065), (-0.72, 0.3 + k * 0.065)]
            dev = np.maximum(dev, 0.95 * c.stroke(wire, 0.014, 0.3))
    if "chest_tube" in look.devices:
        tube = [(0.9, 0.62), (0.5, 0.45), (0.2, 0.2), (0.05, 0.14)]
        dev = np.maximum(dev, 0.85 * c.stroke(tube, 0.03, 0.3))
    return D + 0.5 * dev


def render(look: Look, h: int, w: int, seed: int) -> np.ndarray:
    """The picture as display intensities in [0, 1]: drawn, slightly blurred, with quantum-like noise."""
    rng = np.random.default_rng(seed)
    c = Canvas(h, w)
    D = lateral(look, c, rng) if look.view in ("LATERAL", "LL") else frontal(look, c, rng)
    D = blur(D, 0.8) + rng.normal(0, 0.002, D.shape)
    return (D - D.min()) / (D.max() - D.min())


# ============================================================================================================
# MIMIC-CXR: reports in the real text layout (the MIMIC-CXR layout), written for this project


def mimic_text(src: str) -> str:
    """Lay a report out the MIMIC way: every line starts with one space, wrapped at 79, blank lines are " ".

    Source conventions: ``=FINAL`` is the centred title, ``=RULE`` a line of underscores, an empty line a
    blank line, ``!text`` a line written as it is, a line ending in ``:`` a header alone on its line; any
    other line is a paragraph, wrapped, and lines indented by four more spaces continue it (two spaces after
    a period).
    """
    out: list[str] = []
    lines: list[str] = []
    for line in textwrap.dedent(src).strip("\n").split("\n"):
        if line.startswith("    ") and lines:  # continues the paragraph above (keeps the source narrow)
            lines[-1] += ("  " if lines[-1].endswith(".") else " ") + line.strip()
        else:
            lines.append(line)
    for i, line in enumerate(lines):
        line = line.rstrip()
        if line == "=FINAL":
            out.append(" " * 33 + "FINAL REPORT")
        elif line == "=RULE":
            out.append(" " + "_" * 78)
        elif not line.strip():
            out.append(" ")
        elif line.startswith("!"):
            out.append(line[1:])
        elif line.endswith(":"):  # a header alone: a trailing space when a blank line follows, as in the data
            out.append(" " + line + (" " if i + 1 < len(lines) and not lines[i + 1].strip() else ""))
        else:
            out += [" " + part for part in textwrap.wrap(line, width=78, break_on_hyphens=False)]
    return "\n".join(out) + "\n"


LABEL_NAMES = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]
PA_LAT, PORTABLE = "CHEST (PA AND LAT)", "CHEST (PORTABLE AP)"


@dataclass
class DemoStudy:
    """One study of the demo: its patient, its pictures, its report and its labels (CheXpert convention)."""

    patient: int  # index into PATIENTS
    day: int  # days after the patient's first study
    views: list[tuple[str, Look]]  # (ViewPosition, what the picture shows)
    report: str | None  # None: the report file is left out on purpose (a deliberate fault)
    labels: dict[str, float]  # label name -> 1.0 / 0.0 / -1.0; absent = not mentioned (blank)
    procedure: str = PA_LAT
    edge_case: str = ""  # which parser edge case the report exercises, for the README
    fault: str = ""  # "truncated:<view index>", "no_pixel_data", "unlisted_image"


def _pair(**look) -> list[tuple[str, Look]]:
    return [("PA", Look(view="PA", **look)), ("LATERAL", Look(view="LATERAL", **look))]


# (split of the patient, sex for the DICOM header) — 13 patients; splits are by patient
PATIENTS = [("train", "F"), ("train", "M"), ("train", "M"), ("train", "M"), ("train", "F"),
            ("train", "M"), ("train", "F"), ("validate", "M"), ("validate", "F"), ("test", "F"),
            ("test", "M"), ("train", "F"), ("train", "M")]

STUDIES: list[DemoStudy] = [
    DemoStudy(0, 0, _pair(), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___ year old woman with a cough for two weeks, evaluate for pneumonia.

        TECHNIQUE:  Frontal and lateral views of the chest.

        COMPARISON:  None.

        FINDINGS:

        The lungs are well expanded and clear.  There is no focal consolidation, pleural effusion or
            pneumothorax.  The heart is normal in size.  The mediastinal and hilar contours are
            unremarkable.  No acute bony abnormality.

        IMPRESSION:

        No acute cardiopulmonary process.
        """, {"No Finding": 1.0}),
    DemoStudy(0, 94, _pair(effusion={"left": 0.35}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___F with shortness of breath on exertion.

        TECHNIQUE:  PA and lateral views of the chest.

        COMPARISON:  ___.

        FINDINGS:  There is a new small left pleural effusion blunting the left costophrenic angle.  The
            right lung is clear.  Heart size is normal.  No pneumothorax.

        IMPRESSION:  Small left pleural effusion, new since the prior study.  No pneumothorax.
        """, {"Pleural Effusion": 1.0, "Pneumothorax": 0.0}),
    DemoStudy(0, 151, _pair(atelectasis=["left"]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Follow-up of a left pleural effusion.

        COMPARISON:  ___.

        FINDINGS:  The left pleural effusion seen before has resolved.  A thin linear opacity at the left
            base is most likely subsegmental atelectasis or scarring.  No new consolidation.  The
            cardiomediastinal silhouette is normal.

        IMPRESSION:

        1.  Resolution of the left pleural effusion.
        2.  Thin linear opacity at the left base, likely atelectasis or scarring.
        3.  No new focal consolidation.
        """, {"Pleural Effusion": 0.0, "Atelectasis": -1.0, "Lung Opacity": 1.0, "Consolidation": 0.0},
        edge_case="numbered impressions (1. 2. 3.)"),
    DemoStudy(1, 0, _pair(heart=1.35, edema=0.8, effusion={"right": 0.1, "left": 0.12}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___M with worsening leg swelling and dyspnea, known heart failure.

        COMPARISON:  ___.

        FINDINGS:  The heart is moderately enlarged.  There is mild interstitial pulmonary edema with
            indistinct perihilar vessels.  Small bilateral pleural effusions are suggested on the lateral
            view.  No pneumothorax.

        IMPRESSION:  Moderate cardiomegaly with mild interstitial pulmonary edema.  Possible small bilateral
            pleural effusions.
        """, {"Cardiomegaly": 1.0, "Edema": 1.0, "Pleural Effusion": -1.0}),
    DemoStudy(1, 3, [("AP", Look(view="AP", heart=1.3, edema=0.4, devices=["ett", "ngt", "cvc"]))], """
        =FINAL
        EXAMINATION:  CHEST (PORTABLE AP)

        INDICATION:  ___M intubated for respiratory failure, evaluate tube positions.

        COMPARISON:  Chest radiograph from ___.

        FINDINGS:  An endotracheal tube ends about 4 cm above the carina.  A nasogastric tube passes below
            the diaphragm with its tip in the stomach.  A right internal jugular central venous catheter
            ends in the mid superior vena cava.  The heart remains enlarged.  Pulmonary edema has improved. 
            No pneumothorax.

        IMPRESSION:  Lines and tubes in satisfactory position.  Enlarged heart with improving pulmonary
            edema.  No pneumothorax.
        """, {"Support Devices": 1.0, "Cardiomegaly": 1.0, "Edema": 1.0, "Pneumothorax": 0.0},
        procedure=PORTABLE),
    DemoStudy(2, 0, _pair(opacity=[("right", "lower", 1.0)]), """
        WET READ: ___ ___ ___ 9:42 PM
        !  Right lower lobe opacity, likely pneumonia.
        =RULE
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___ with fever and a productive cough.

        COMPARISON:  None.

        FINDINGS:

        There is patchy consolidation in the right lower lobe.  The left lung is clear.  No pleural effusion
            or pneumothorax.  The cardiomediastinal silhouette is within normal limits.

        IMPRESSION:

        Right lower lobe consolidation, consistent with pneumonia in the appropriate clinical setting.

        NOTIFICATION:  The findings were telephoned to Dr. ___ by Dr. ___ at 9:40 PM on ___, about 10
            minutes after they were seen.
        """, {"Consolidation": 1.0, "Pneumonia": 1.0},
        edge_case="WET READ at the top (first line: missed) and NOTIFICATION after the impression"),
    DemoStudy(2, 20, [("PA", Look(view="PA", opacity=[("right", "lower", 0.45)]))], """
        =FINAL
        EXAMINATION:  CHEST (PA)

        INDICATION:  Follow-up of right lower lobe pneumonia.

        COMPARISON:  ___.

        A single frontal view of the chest was obtained.  The right lower lobe opacity is smaller than
            before.  No new focal opacity.  No pleural effusion.

        Improving right lower lobe pneumonia.
        """, {"Lung Opacity": 1.0, "Pneumonia": 1.0, "Pleural Effusion": 0.0}, procedure="CHEST (PA)",
        edge_case="no FINDINGS or IMPRESSION: the text after the first blank line of the last section "
                  "becomes last_paragraph"),
    DemoStudy(3, 0, _pair(pneumothorax={"right": 0.6}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___M with sudden right-sided chest pain.

        COMPARISON:  None.

        FINDINGS:  There is a moderate right apical pneumothorax.  There is no mediastinal shift.  The left
            lung is clear.  No pleural effusion.  Heart size is normal.

        IMPRESSION:  Moderate right pneumothorax without mediastinal shift.

        NOTIFICATION:  Dr. ___ was told of the finding by telephone at 10:15 on ___.
        """, {"Pneumothorax": 1.0}),
    DemoStudy(3, 1, _pair(pneumothorax={"right": 0.25}, devices=["chest_tube"]), """
        ADDENDUM:  On review of the lateral view, the side holes of the chest tube lie within the pleural
            space.
        =RULE
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Right pneumothorax, after placement of a chest tube.

        COMPARISON:  ___.

        FINDINGS:  A right chest tube is in place with its tip at the apex.  The right pneumothorax is much
            smaller, now small and apical.  No effusion.

        IMPRESSION:  Right chest tube in place.  Small residual right apical pneumothorax.
        """, {"Support Devices": 1.0, "Pneumothorax": 1.0},
        edge_case="addendum on the first line, separated from the report by a line of underscores"),
    DemoStudy(4, 0, _pair(heart=1.2, devices=["pacer", "wires"]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Preoperative evaluation.

        COMPARISON:  ___.

        FINDINGS:  A left-sided pacemaker has leads ending in the right atrium and right ventricle.  Median
            sternotomy wires are intact.  The heart is mildly enlarged.  The lungs are clear.  No pleural
            effusion or pneumothorax.
        """, {"Support Devices": 1.0, "Cardiomegaly": 1.0, "Pleural Effusion": 0.0, "Pneumothorax": 0.0},
        edge_case="FINDINGS only, no IMPRESSION"),
    DemoStudy(4, 402, [("PA", Look(view="PA", heart=1.2, devices=["pacer", "wires"])),
                       ("LL", Look(view="LL", heart=1.2, devices=["pacer", "wires"]))], """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___F with a pacemaker and a new cough.

        COMPARISON:  ___.

        FINDINGS:  Pacemaker and sternotomy wires are unchanged.  The cardiomediastinal contours are
            stable.  No focal consolidation.  No pleural effusion.

        IMPRESSION:  No acute cardiopulmonary process.  Stable cardiomediastinal contours.
        """, {"No Finding": 1.0}),  # "stable contours" compares with a prior: no mention of a wide one
    DemoStudy(5, 0, _pair(nodule=[("right", "upper")]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___ year old smoker with a chronic cough.

        COMPARISON:  None.

        CHEST, PA AND LATERAL:
        A rounded nodule of about 1 cm projects over the right upper lung zone.  The lungs are otherwise
            clear.  No pleural effusion.  Normal heart size.

        IMPRESSION:  Right upper lobe nodule.  A chest CT is advised for further evaluation.
        """, {"Lung Lesion": 1.0}, edge_case="title-only header 'CHEST, PA AND LATERAL:' followed by text"),
    DemoStudy(5, 180, _pair(nodule=[("right", "upper")]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Follow-up of a right upper lobe nodule.

        COMPARISON:  ___.

        FINDINGS:  The right upper lobe nodule has not changed in size.  No new nodules.  No consolidation
            or effusion.  Heart size is normal.

        IMPRESSION:  Stable right upper lobe nodule.

        RECOMMENDATION(S):  A follow-up chest CT in 6 months is suggested if one has not been done.
        """, {"Lung Lesion": 1.0}, edge_case="RECOMMENDATION(S) after the impression"),
    DemoStudy(6, 0, [("AP", Look(view="AP", volume=0.85, atelectasis=["right", "left"]))], """
        =FINAL

        Portable frontal view of the chest.  Low lung volumes.  Linear opacities at both lung bases are
            consistent with atelectasis.  No large pleural effusion or pneumothorax.  The heart size is
            normal.

        Bibasilar atelectasis.
        """, {"Atelectasis": 1.0, "Lung Opacity": 1.0, "Pleural Effusion": 0.0, "Pneumothorax": 0.0,
              "Cardiomegaly": 0.0},
        procedure=PORTABLE, edge_case="no headers at all (one 'full report' section, then last_paragraph)"),
    DemoStudy(6, 30, _pair(), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Follow-up of atelectasis.

        COMPARISON:  ___.

        FINDINGS:  Lung volumes are normal.  The basilar atelectasis seen before has resolved.  No focal
            consolidation, effusion or pneumothorax.

        IMPRESSION:  Resolved bibasilar atelectasis.  No acute process.
        """, {"Atelectasis": 0.0, "No Finding": 1.0}),
    DemoStudy(7, 0, _pair(), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___ with chest pain.

        TECHNIQUE:  PA and lateral.

        COMPARISON:  ___.

        FINDINGS:

        IMPRESSION:  Normal chest radiograph.  No pneumonia, effusion or pneumothorax.
        """, {"No Finding": 1.0, "Pneumonia": 0.0, "Pleural Effusion": 0.0, "Pneumothorax": 0.0},
        edge_case="empty FINDINGS followed (after a blank line) by IMPRESSION"),
    DemoStudy(7, 61, [("PA", Look(view="PA", heart=1.22))], """
        =FINAL
        EXAMINATION:  CHEST (PA)

        INDICATION:  ___M with hypertension, follow-up.

        COMPARISON:  ___.

        FINDINGS:  Mild enlargement of the cardiac silhouette is unchanged.  No pulmonary edema.  No
            effusion or consolidation.

        IMPRESSION:  Mild cardiomegaly, unchanged.  No edema.
        """, {"Cardiomegaly": 1.0, "Edema": 0.0}, procedure="CHEST (PA)"),
    DemoStudy(8, 0, _pair(opacity=[("left", "lower", 0.6)]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___F with a low-grade fever.

        COMPARISON:  None.

        FINDINGS:  There is an ill-defined opacity at the left lung base.  The right lung is clear.  No
            pleural effusion.  Normal heart size.

        IMPRESSION:  Left basilar opacity may reflect atelectasis, though pneumonia cannot be excluded.
        """, {"Lung Opacity": 1.0, "Atelectasis": -1.0, "Pneumonia": -1.0}),
    DemoStudy(8, 45, _pair(), None, {"No Finding": 1.0}, fault="missing_report"),
    DemoStudy(9, 0, _pair(effusion={"right": 0.3}, atelectasis=["right"]), """
        FINDINGS:  Frontal and lateral views of the chest.  Small right pleural effusion with adjacent
            basilar opacity, likely atelectasis.  The left lung is clear.  Heart size is normal.

        IMPRESSION:  Small right pleural effusion with adjacent atelectasis.
        """, {"Pleural Effusion": 1.0, "Atelectasis": 1.0},
        edge_case="a header on the first line (FINDINGS), which the official parser does not see"),
    DemoStudy(9, 12, _pair(effusion={"right": 0.08}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Follow-up of a right pleural effusion.

        COMPARISON:  ___.

        FINDINGS:
        IMPRESSION:  The right pleural effusion has nearly resolved, with only trace blunting of the right
            costophrenic angle left.
        """, {"Pleural Effusion": 1.0},
        edge_case="'FINDINGS:' directly followed by 'IMPRESSION:' on the next line: the official parser "
                  "swallows the IMPRESSION header, so the text lands in findings"),
    DemoStudy(10, 0, _pair(heart=1.35, edema=1.0, effusion={"right": 0.2, "left": 0.2}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___M with orthopnea.

        COMPARISON:  ___.

        FINDINGS:  There are bilateral interstitial and hazy airspace opacities with a perihilar
            predominance, in keeping with pulmonary edema.  The heart is moderately enlarged.  Small
            bilateral pleural effusions.

        IMPRESSON:  Moderate pulmonary edema, cardiomegaly and small bilateral pleural effusions.
        """, {"Edema": 1.0, "Cardiomegaly": 1.0, "Pleural Effusion": 1.0},
        edge_case="misspelled header IMPRESSON (normalised to impression)"),
    DemoStudy(10, 2, _pair(heart=1.35, edema=0.5, effusion={"right": 0.18, "left": 0.15}), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  Follow-up of pulmonary edema.

        COMPARISON:  ___.

        FINDINGS:  Pulmonary edema has decreased.  The enlarged heart is unchanged.  Small bilateral pleural
            effusions persist.

        IMPRESSION:  Improving pulmonary edema.  Stable cardiomegaly and small bilateral pleural effusions.
        """, {"Edema": 1.0, "Cardiomegaly": 1.0, "Pleural Effusion": 1.0}, fault="no_pixel_data"),
    DemoStudy(11, 0, _pair(), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___F, preoperative chest radiograph.

        COMPARISON:  None.

        FINDINGS:  The lungs are clear without focal consolidation.  No pleural effusion or pneumothorax. 
            The cardiomediastinal silhouette is normal.  Mild degenerative changes of the thoracic spine.

        IMPRESSION:  No acute cardiopulmonary abnormality.
        """, {"No Finding": 1.0}, fault="unlisted_image"),
    DemoStudy(11, 230, _pair(fracture=["left"]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___F after a fall, left-sided chest wall pain.

        COMPARISON:  ___.

        FINDINGS:  There is a fracture of the lateral left seventh rib without displacement.  No
            pneumothorax.  The lungs are clear.  Heart size is normal.

        IMPRESSION:  Fracture of the left seventh rib.  No pneumothorax.
        """, {"Fracture": 1.0, "Pneumothorax": 0.0}),
    DemoStudy(12, 0, _pair(mediastinum=1.6), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___M with hypertension and chest discomfort.

        COMPARISON:  None.

        FINDINGS:  The upper mediastinum is widened.  The heart is normal in size.  The lungs are clear.  No
            pleural effusion.

        IMPRESSION:  Widened mediastinum.  A chest CT is recommended to evaluate the thoracic aorta.
        """, {"Enlarged Cardiomediastinum": 1.0}, fault="truncated:1"),
    DemoStudy(12, 200, _pair(pleural_thickening=["left"]), """
        =FINAL
        EXAMINATION:  CHEST (PA AND LAT)

        INDICATION:  ___M, follow-up after a CT of the chest.

        COMPARISON:  ___.

        FINDINGS:  The mediastinum is again prominent but unchanged.  There is smooth pleural thickening at
            the left apex.  The lungs are otherwise clear.  No effusion.

        IMPRESSION:  Apical pleural thickening on the left.
        """, {"Pleural Other": 1.0}),
]


# ============================================================================================================
# MIMIC-CXR: DICOM files, the tree and the CSVs (MIMIC-CXR and MIMIC-CXR-JPG on PhysioNet)

SOP_CR = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
SOP_DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
IMPLEMENTATION_UID = generate_uid(entropy_srcs=["datakit demo implementation"])
VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral",
                "LL": "left lateral"}
META_COLUMNS = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
    "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]


@dataclass
class Encoding:
    """How one image is stored: the variety a converter meets in real archives."""

    photometric: str = "MONOCHROME2"
    bits_stored: int = 12  # in 16 allocated
    signed: bool = False
    voi: str | None = None  # "lut" (VOI LUT Sequence), "window" (WindowCenter/Width) or None
    syntax: str = "explicit"  # explicit, implicit, deflate, rle
    garbage_high_bits: bool = False  # random bits above BitsStored, which a reader must mask

    def describe(self) -> str:
        bits = f"{self.bits_stored}-bit{' signed' if self.signed else ''}"
        extra = [f"VOI {self.voi}" if self.voi else "no VOI", *(["garbage in the unused high bits"]
                                                               if self.garbage_high_bits else [])]
        return f"{self.photometric}, {bits}, {self.syntax}, {', '.join(extra)}"


def encoding_for(k: int) -> Encoding:
    """The k-th image's encoding: a fixed cycle, so every kind occurs several times."""
    bits = 16 if k % 5 == 3 else 12
    voi = [("lut" if bits == 12 else "window"), "window", "window", None][k % 4]
    syntax = ["deflate", "rle", "deflate", "explicit", "rle", "deflate", "implicit", "rle"][k % 8]
    return Encoding("MONOCHROME1" if k % 3 == 1 else "MONOCHROME2", bits, False, voi, syntax)


def _uid(*parts: object) -> str:
    return generate_uid(entropy_srcs=["datakit demo", *map(str, parts)])


def stored_pixels(p: np.ndarray, enc: Encoding, rng) -> tuple[np.ndarray, float, float]:
    """Display intensities → stored values; returns (pixels, lo, hi) in stored units."""
    x = p if enc.photometric == "MONOCHROME2" else 1.0 - p  # MONOCHROME1: minimum = white
    if enc.signed:
        lo, hi, dtype = -30000.0, 30000.0, np.int16
    elif enc.bits_stored == 16:
        lo, hi, dtype = 1800.0 + rng.integers(0, 400), 61000.0 - rng.integers(0, 2000), np.uint16
    else:
        lo, hi, dtype = 150.0 + rng.integers(0, 60), 3900.0 - rng.integers(0, 150), np.uint16
    values = np.rint(lo + (hi - lo) * x).astype(dtype)
    if enc.garbage_high_bits:
        values |= (rng.integers(0, 16, values.shape) << 12).astype(np.uint16)
    return values, lo, hi


def _voi_lut(lo: float, hi: float) -> Dataset:
    """A 12-bit VOI LUT: an S-curve over the stored range, as modalities ship for display."""
    x = np.arange(4096, dtype=float)
    curve = 1 / (1 + np.exp(-(x - (lo + hi) / 2) / (0.16 * (hi - lo))))
    curve = (curve - curve.min()) / (curve.max() - curve.min())
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 12]
    item.LUTExplanation = "DEMO S-CURVE"
    item.add_new(0x00283006, "US", [int(v) for v in np.rint(curve * 4095)])  # LUTData
    return item


def dicom_dataset(study: DemoStudy, ids: dict, view: str, rows: int, cols: int, enc: Encoding,
                  instance: int, pixels: np.ndarray | None, lo: float, hi: float) -> Dataset:
    """One image as a DICOM data set (CR for MONOCHROME1, DX for presentation otherwise)."""
    sop_class = SOP_CR if enc.photometric == "MONOCHROME1" else SOP_DX
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = _uid(ids["dicom_id"])
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if enc.syntax == "implicit" else ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = "DATAKIT_DEMO_1"
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyDate, ds.StudyTime = ids["date"], ids["time"]
    ds.Modality = "CR" if sop_class == SOP_CR else "DX"
    ds.Manufacturer = "datakit demo phantom"
    ds.PatientName = ""
    ds.PatientID = ids["subject_id"]
    ds.PatientSex = PATIENTS[study.patient][1]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view
    ds.StudyInstanceUID = _uid(ids["study_id"])
    ds.SeriesInstanceUID = _uid(ids["study_id"], view, instance)
    ds.StudyID = ids["study_id"]
    ds.SeriesNumber, ds.InstanceNumber = instance, 1
    ds.PatientOrientation = ["P", "F"] if view in ("LATERAL", "LL") else ["L", "F"]
    ds.ImagerPixelSpacing = [1.2, 1.2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = enc.photometric
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, enc.bits_stored, enc.bits_stored - 1
    ds.PixelRepresentation = 1 if enc.signed else 0
    intercept = 30000.0 if enc.signed else 0.0
    if sop_class == SOP_DX or enc.signed:
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = intercept, 1, "US"
    if sop_class == SOP_DX:
        ds.PresentationLUTShape = "IDENTITY"
    if enc.voi == "window":
        ds.WindowCenter = round((lo + hi) / 2 + intercept, 1)
        ds.WindowWidth = round((hi - lo) * 0.92, 1)
    elif enc.voi == "lut":
        ds.VOILUTSequence = Sequence([_voi_lut(lo, hi)])
    if pixels is not None:
        ds.PixelData = pixels.tobytes()
    if enc.syntax == "deflate":
        meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    elif enc.syntax == "rle" and pixels is not None:
        # keep the SOP Instance UID: pydicom would otherwise draw a new random one on compression
        ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def _dicom_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _size(view: str, rng) -> tuple[int, int]:
    jitter = 2 * int(rng.integers(-5, 6))
    if view == "AP":
        return 236 + jitter, 244
    if view in ("LATERAL", "LL"):
        return 256 + jitter, 224
    return 260 + jitter, 214


def _write_gz_csv(path: Path, header: list[str], rows: list[list]) -> None:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:  # no name, no time: reproducible
        gz.write(text.getvalue().encode("utf-8"))
    path.write_bytes(buf.getvalue())


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def make_ids(rng) -> tuple[list[str], list[dict]]:
    """Subject ids (8 digits from 1, spread over p10..p19), study ids (8 digits from 5), dates and times."""
    subjects, used = [], set()
    for i in range(len(PATIENTS)):
        while (sid := f"1{i % 10}{int(rng.integers(0, 10**6)):06d}") in used:
            pass
        used.add(sid)
        subjects.append(sid)
    first_day = [np.datetime64("2110-01-01") + int(rng.integers(0, 80 * 365)) for _ in PATIENTS]
    studies = []
    for st in STUDIES:
        while (study_id := f"5{int(rng.integers(0, 10**7)):07d}") in used:
            pass
        used.add(study_id)
        day = first_day[st.patient] + st.day
        secs = int(rng.integers(0, 86400))
        time = f"{secs // 3600:02d}{secs % 3600 // 60:02d}{secs % 60:02d}.{int(rng.integers(0, 1000)):03d}"
        studies.append({"subject_id": subjects[st.patient], "study_id": study_id,
                        "date": str(day).replace("-", ""), "time": time})
    return subjects, studies


def _dicom_id(rng) -> str:
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, 5))


def build_mimic(root: Path, rng) -> dict:
    """Write the MIMIC-CXR tree; returns what README.md and the tests need to know."""
    _, study_ids = make_ids(rng)
    meta_rows, split_rows, label_rows, images, faults = [], [], [], [], []
    k = 0
    for n, (st, ids) in enumerate(zip(STUDIES, study_ids, strict=True)):
        subject, study = ids["subject_id"], ids["study_id"]
        pdir = root / "files" / f"p{subject[:2]}" / f"p{subject}"
        sdir = pdir / f"s{study}"
        sdir.mkdir(parents=True, exist_ok=True)
        if st.report is not None:
            (pdir / f"s{study}.txt").write_bytes(mimic_text(st.report).encode("ascii"))
        else:
            faults.append(("missing_report", f"files/p{subject[:2]}/p{subject}/s{study}.txt",
                           "the study folder and its images are there, the report file is not"))
        views = list(st.views)
        if st.fault == "unlisted_image":
            views.append(("PA", Look(view="PA")))
        for i, (view, look) in enumerate(views):
            enc = encoding_for(k)
            if n == 0 and view == "LATERAL":
                enc = Encoding("MONOCHROME2", 12, False, "window", "explicit", garbage_high_bits=True)
            if n == 9 and view == "LATERAL":
                enc = Encoding("MONOCHROME2", 16, True, "window", "deflate")
            truncated = st.fault == f"truncated:{i}"
            if truncated:
                enc.syntax = "explicit"
            k += 1
            dicom_id = _dicom_id(rng)
            rows, cols = _size(view, rng)
            seed = int.from_bytes(hashlib.sha256(f"{SEED}:{dicom_id}".encode()).digest()[:4], "little")
            p = render(look, rows, cols, seed)
            pixels, lo, hi = stored_pixels(p, enc, np.random.default_rng(seed))
            ids_i = {**ids, "dicom_id": dicom_id}
            data = _dicom_bytes(dicom_dataset(st, ids_i, view, rows, cols, enc, i + 1, pixels, lo, hi))
            rel = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.dcm"
            if truncated:
                data = data[: len(data) * 3 // 5]
                faults.append(("corrupt_image", rel,
                               f"a {view} DICOM cut off at {len(data)} bytes, inside its pixel data"))
            (root / rel).write_bytes(data)
            images.append({"dicom_id": dicom_id, "study_id": study, "view": view, "path": rel,
                           "rows": rows, "cols": cols, "encoding": enc.describe(),
                           "fault": "corrupt_image" if truncated else ("unlisted_image" if i >= len(st.views)
                                                                       else "")})
            if i >= len(st.views):  # the stray file: on disk, in no CSV
                faults.append(("unlisted_image", rel, "a valid DICOM in the study folder with no row in the "
                               "metadata or split CSV"))
                continue
            orientation = "Recumbent" if view == "AP" else ("" if n % 7 == 3 else "Erect")
            meta_rows.append([dicom_id, subject, study, st.procedure, view, rows, cols, ids["date"],
                              ids["time"], st.procedure, VIEW_MEANING[view], orientation])
            split_rows.append([dicom_id, study, subject, PATIENTS[st.patient][0]])
        if st.fault == "no_pixel_data":  # a header-only object beside the two images, listed in the metadata
            dicom_id = _dicom_id(rng)
            enc = Encoding("MONOCHROME2", 12, False, None, "explicit")
            rel = f"files/p{subject[:2]}/p{subject}/s{study}/{dicom_id}.dcm"
            ds = dicom_dataset(st, {**ids, "dicom_id": dicom_id}, "", 260, 214, enc, 9, None, 0, 0)
            (root / rel).write_bytes(_dicom_bytes(ds))
            meta_rows.append([dicom_id, subject, study, st.procedure, "", 260, 214, ids["date"], ids["time"],
                              st.procedure, "", ""])
            split_rows.append([dicom_id, study, subject, PATIENTS[st.patient][0]])
            images.append({"dicom_id": dicom_id, "study_id": study, "view": "", "path": rel, "rows": 260,
                           "cols": 214, "encoding": "header only", "fault": "no_pixel_data"})
            faults.append(("no_pixel_data", rel, "a DICOM header with image attributes but no Pixel Data "
                           "element, listed in the metadata CSV"))
        label_rows.append([subject, study, *[_label(st.labels.get(name)) for name in LABEL_NAMES]])

    meta_rows.sort(key=lambda r: (r[1], r[2], r[0]))
    split_rows.sort(key=lambda r: (r[2], r[1], r[0]))
    label_rows.sort(key=lambda r: (r[0], r[1]))
    _write_gz_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", META_COLUMNS, meta_rows)
    _write_gz_csv(root / "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"],
                  split_rows)
    label_header = ["subject_id", "study_id", *LABEL_NAMES]
    _write_gz_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz", label_header, label_rows)
    # NegBio ran with CheXpert's mention phrases (MIMIC-CXR-JPG); here the files agree, and this one is plain
    _write_csv(root / "mimic-cxr-2.0.0-negbio.csv", label_header, label_rows)
    return {"studies": [{**ids, "edge_case": st.edge_case, "split": PATIENTS[st.patient][0],
                         "has_report": st.report is not None}
                        for st, ids in zip(STUDIES, study_ids, strict=True)],
            "images": images, "faults": faults}


def _label(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


# ============================================================================================================
# IU-Xray in the Open-i layout (the Open-i ecgen-radiology XML): ecgen-radiology/<n>.xml + NLMCXR_png/<image id>.png
# The reports are written for this project (the real ones may not be shipped modified); XXXX is the real
# data's de-identification placeholder, which also swallows ordinary words.


@dataclass
class IuReport:
    """One Open-i record. A section mapped to None has no element; "" gives an empty element."""

    uid: int
    sections: dict[str, str | None]
    major: list[str]
    automatic: list[str]
    images: list[Look]
    series: int = 1  # the <k> of CXR<uid>_<k>_IM-<nnnn>-<mmmm>


IU_REPORTS = [
    IuReport(9001, {
        "COMPARISON": "None.",
        "INDICATION": "XXXX-year-old male with chest pain.",
        "FINDINGS": "The heart size and mediastinal contours are within normal limits. The lungs are clear. "
                    "There is no pneumothorax or pleural effusion. The bony structures are intact.",
        "IMPRESSION": "No acute cardiopulmonary disease."},
        ["normal"], [], [Look(view="PA"), Look(view="LATERAL")]),
    IuReport(9002, {
        "COMPARISON": "XXXX",
        "INDICATION": "Shortness of breath.",
        "FINDINGS": "The cardiac silhouette is at the upper limit of normal. The lungs are clear without "
                    "focal airspace disease. No pleural effusion or pneumothorax.",
        "IMPRESSION": "Borderline heart size. No acute pulmonary findings."},
        ["Cardiomegaly/borderline"], [], [Look(view="PA", heart=1.15), Look(view="LATERAL", heart=1.15)]),
    IuReport(9003, {
        "COMPARISON": "",
        "INDICATION": "Fever and cough for XXXX days.",
        "FINDINGS": "There is airspace consolidation in the right lower lobe. The left lung is clear. Heart "
                    "size is normal. No XXXX of pleural effusion.",
        "IMPRESSION": "Right lower lobe pneumonia."},
        ["Pneumonia/lower lobe/right", "Consolidation/lung/lower lobe/right"], ["Pneumonia"],
        [Look(view="PA", opacity=[("right", "lower", 1.0)]),
         Look(view="LATERAL", opacity=[("right", "lower", 1.0)])]),
    IuReport(9004, {
        "COMPARISON": "None.",
        "INDICATION": "Routine screening.",
        "FINDINGS": "A small calcified granuloma projects over the left upper lobe. The lungs are otherwise "
                    "clear. Normal heart size. Degenerative changes of the thoracic spine.",
        "IMPRESSION": "No active disease. Old granulomatous disease."},
        ["Calcified Granuloma/lung/upper lobe/left", "Spine/degenerative"], ["Granuloma"],
        [Look(view="PA", nodule=[("left", "upper")]), Look(view="LATERAL")]),
    IuReport(9005, {
        "INDICATION": "Preoperative evaluation.",
        "FINDINGS": "Heart and mediastinum are normal. The lungs are clear. No effusion.",
        "IMPRESSION": "Negative chest x-XXXX."},
        ["normal"], [], []),
    IuReport(9006, {
        "COMPARISON": "XXXX, XXXX.",
        "INDICATION": "Dyspnea.",
        "FINDINGS": "Small left pleural effusion with blunting of the left costophrenic XXXX. The heart is "
                    "mildly enlarged. No pneumothorax.",
        "IMPRESSION": "1. Small left pleural effusion. 2. Mild cardiomegaly."},
        ["Pleural Effusion/left/small", "Cardiomegaly/mild"], ["Pleural Effusion", "Cardiomegaly"],
        [Look(view="PA", heart=1.25, effusion={"left": 0.35}),
         Look(view="LATERAL", heart=1.25, effusion={"left": 0.35}),
         Look(view="AP", heart=1.25, effusion={"left": 0.35})], series=2),
    IuReport(9007, {
        "COMPARISON": "None.",
        "INDICATION": "Back pain.",
        "FINDINGS": "",
        "IMPRESSION": "No acute cardiopulmonary abnormality. Mild degenerative changes of the spine."},
        ["Spine/degenerative/mild"], [], [Look(view="PA")]),
    IuReport(9008, {
        "COMPARISON": "XXXX",
        "INDICATION": "Pacemaker check.",
        "FINDINGS": "A left chest wall pacemaker is present with leads in the right atrium and right "
                    "ventricle. Heart size is normal. The lungs are clear.",
        "IMPRESSION": "Pacemaker in place. No acute disease."},
        ["Pacemaker, Artificial"], [],
        [Look(view="PA", devices=["pacer"]), Look(view="LATERAL", devices=["pacer"])]),
    IuReport(9009, {
        "COMPARISON": "None.",
        "INDICATION": "XXXX-year-old smoker with dyspnea.",
        "FINDINGS": "The lungs are hyperexpanded with flattened diaphragms. No focal consolidation. Heart "
                    "size is normal.",
        "IMPRESSION": "Hyperinflation, in keeping with emphysema. No acute process."},
        ["Pulmonary Emphysema", "Lung/hyperdistention"], ["Pulmonary Emphysema"],
        [Look(view="PA", volume=1.12), Look(view="LATERAL", volume=1.12)]),
    IuReport(9010, {
        "COMPARISON": "XXXX XXXX",
        "FINDINGS": "There is a small left apical pneumothorax. No mediastinal shift. The lungs are "
                    "otherwise clear.",
        "IMPRESSION": "Small left apical pneumothorax."},
        ["Pneumothorax/apex/left/small"], ["Pneumothorax"],
        [Look(view="PA", pneumothorax={"left": 0.3}), Look(view="LATERAL")]),
]
IU_SECTION_ORDER = ["COMPARISON", "INDICATION", "FINDINGS", "IMPRESSION"]


def iu_image_ids(rep: IuReport) -> list[str]:
    return [f"CXR{rep.uid}_{rep.series}_IM-{rep.uid - 6100:04d}-{k + 1}001" for k in range(len(rep.images))]


def iu_xml(rep: IuReport) -> str:
    """One ecgen-radiology/<n>.xml file, element by element as the Open-i ecgen-radiology XML describes."""
    abstract = []
    for label in IU_SECTION_ORDER:
        text = rep.sections.get(label)
        if text is None:
            continue
        if text:
            abstract.append(f'            <AbstractText Label="{label}">{escape(text)}</AbstractText>')
        else:
            abstract.append(f'            <AbstractText Label="{label}"/>')
    mesh = [f"      <major>{escape(m)}</major>" for m in rep.major]
    mesh += [f"      <automatic>{escape(m)}</automatic>" for m in rep.automatic]
    images = []
    for k, image_id in enumerate(iu_image_ids(rep)):
        images += [f"   <parentImage id={quoteattr(image_id)}>",
                   f"      <figureId>F{k + 1}</figureId>",
                   "      <caption>Xray Chest PA and Lateral</caption>",
                   '      <panel type="single">',
                   f"         <url>NLMCXR_png/{image_id}.png</url>",
                   "      </panel>",
                   "   </parentImage>"]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<eCitation>",
        '   <meta type="rr"/>',
        f'   <uId id="CXR{rep.uid}"/>',
        f'   <pmcId id="{rep.uid}"/>',
        "   <docSource>CXR</docSource>",
        f'   <IUXRId id="{rep.uid}"/>',
        "   <licenseType>open-access</licenseType>",
        "   <licenseURL>http://creativecommons.org/licenses/by-nc-nd/4.0/</licenseURL>",
        "   <ccLicense>byncnd</ccLicense>",
        "   <articleDate>2013-08-01</articleDate>",
        '   <MedlineCitation Owner="Indiana University" Status="supplied by publisher">',
        '      <Article PubModel="Electronic">',
        "         <ArticleTitle>Indiana University Chest X-ray Collection</ArticleTitle>",
        "         <Abstract>", *abstract, "         </Abstract>",
        "      </Article>",
        "   </MedlineCitation>",
        "   <MeSH>", *mesh, "   </MeSH>",
        *images,
        "</eCitation>",
    ]
    return "\n".join(lines) + "\n"


def build_iu(root: Path) -> dict:
    """Write the IU-Xray set; returns its ids for README.md and the tests."""
    (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
    (root / "NLMCXR_png").mkdir(parents=True, exist_ok=True)
    out = []
    for n, rep in enumerate(IU_REPORTS, start=1):
        (root / "ecgen-radiology" / f"{n}.xml").write_bytes(iu_xml(rep).encode("utf-8"))
        ids = iu_image_ids(rep)
        for image_id, look in zip(ids, rep.images, strict=True):
            rows, cols = (256, 216) if look.view in ("PA", "AP") else (256, 224)
            seed = int.from_bytes(hashlib.sha256(f"{SEED}:{image_id}".encode()).digest()[:4], "little")
            pixels = np.rint(render(look, rows, cols, seed) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "NLMCXR_png" / f"{image_id}.png", format="PNG")
        out.append({"file": f"{n}.xml", "uid": f"CXR{rep.uid}", "images": ids})
    return {"reports": out}


# ============================================================================================================
# README and the command line


def readme(mimic: dict, iu: dict) -> str:
    studies = mimic["studies"]
    n_patients = len({s["subject_id"] for s in studies})
    listed = [i for i in mimic["images"] if i["fault"] != "unlisted_image"]
    splits = {sp: sum(1 for s in studies if s["split"] == sp) for sp in ("train", "validate", "test")}
    fault_lines = "\n".join(f"| `{code}` | `mimic-cxr/{path}` | {what} |"
                            for code, path, what in mimic["faults"])
    edge_lines = "\n".join(f"| s{s['study_id']} | {s['edge_case']} |" for s in studies if s["edge_case"])
    n_iu_images = sum(len(r["images"]) for r in iu["reports"])
    no_images = ", ".join(r["file"] for r in iu["reports"] if not r["images"])
    return f"""# Demo data

Synthetic data made by `examples/make_demo.py` (seeded, so every run writes the same files); regenerate
it with

    python examples/make_demo.py

Nothing here comes from a real patient or a real report: the pictures are drawn from simple anatomy (lungs,
heart, mediastinum, spine, ribs, clavicles, diaphragm, soft tissue) with the findings their report describes,
and every report was written for this project. The data is released under the project's licence (MIT), like
the code.

## `mimic-cxr/` — the MIMIC-CXR layout (DICOM)

- `files/p1X/pNNNNNNNN/sNNNNNNNN.txt` reports beside `files/p1X/pNNNNNNNN/sNNNNNNNN/<dicom_id>.dcm`
  images: {len(studies)} studies of {n_patients} patients, {len(mimic['images'])} DICOM files \
({len(listed)} of them in the metadata CSV).
- `mimic-cxr-2.0.0-metadata.csv.gz`, `-split.csv.gz` (split by patient: {splits['train']} train, \
{splits['validate']} validate,
  {splits['test']} test studies), `-chexpert.csv.gz` and `-negbio.csv` (plain, to show that both forms are
  read). Labels follow the CheXpert convention (1.0 / 0.0 / -1.0, blank = not mentioned) and agree with the
  text the official extraction picks (impression, else findings, else the last paragraph); the two label
  files are identical here.
- Reports follow the real text layout: lines of at most 79 characters, each starting with one space, a
  centred `FINAL REPORT`, `___` placeholders. Section-parser edge cases:

| study | edge case |
|---|---|
{edge_lines}

- The DICOMs are real files (pydicom) with the variety a converter meets: MONOCHROME1 (CR) and MONOCHROME2
  (DX), 12-bit in 16 and 16-bit data, one signed image with a rescale intercept, one with garbage in the
  unused high bits, VOI LUT Sequences and WindowCenter/Width, Explicit and Implicit VR, RLE Lossless and
  Deflate.

## `iu-xray/` — the IU-Xray (Open-i) layout

- `ecgen-radiology/<n>.xml`: {len(iu['reports'])} reports (uIds CXR9001–CXR9010, away from the real ids)
  with COMPARISON / INDICATION / FINDINGS / IMPRESSION (some missing, some empty), `XXXX` placeholders as in
  the real data, MeSH `<major>` / `<automatic>` terms and `parentImage` elements; {no_images} has no image.
  The licence elements copy the layout of the real files; they do not apply to this synthetic content.
- `NLMCXR_png/<parentImage id>.png`: {n_iu_images} grayscale PNGs.

## Deliberate faults

These make ingest's quarantine show something; everything else ingests cleanly.

| reason code | file | what is wrong |
|---|---|---|
{fault_lines}

The images of the study without a report are set aside with it (`study_quarantined`).
"""


# The demo's config: `datakit build` (no argument) and `make demo` build it.
DEMO_CONFIG = """\
# The bundled demo: `datakit build` (no argument) or `make demo` builds it with the offline teacher into
# runs/demo. Synthetic MIMIC-CXR-shaped data (examples/demo/README.md); no API key, no GPU, no download.
source = "mimic-cxr"
run = "../../runs/demo"

[teacher]
kind = "offline"

[validate]
min_pass_rate = 0.9

[export]
formats = ["trl", "llamafactory", "swift", "qwen-vl", "llava"]
"""


def build(out: Path) -> dict:
    """Write the whole demo into ``out`` (its mimic-cxr/ and iu-xray/ are replaced)."""
    out = Path(out)
    for name in ("mimic-cxr", "iu-xray"):
        shutil.rmtree(out / name, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    mimic = build_mimic(out / "mimic-cxr", rng)
    iu = build_iu(out / "iu-xray")
    (out / "README.md").write_text(readme(mimic, iu), encoding="utf-8")
    (out / "datakit.toml").write_text(DEMO_CONFIG, encoding="utf-8")
    return {"mimic": mimic, "iu": iu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "demo", help="output folder (default: examples/demo)")
    args = ap.parse_args()
    summary = build(args.out)
    files = [p for p in args.out.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    mimic, iu = summary["mimic"], summary["iu"]
    print(f"{args.out}: {len(mimic['studies'])} MIMIC studies, {len(mimic['images'])} DICOM files, "
          f"{len(iu['reports'])} IU reports; {len(files)} files, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
