"""Synthetic thoracic CT cohorts with organ labels (deterministic under a seed).

Two sources imitate the two public datasets of the paper: ``A`` is StructSeg-like (fixed coarse
in-plane spacing, 5 mm slices, low noise, no contrast, lungs/heart/esophagus/trachea/spinal
cord annotated, StructSeg label values), ``B`` is SegTHOR-like (variable in-plane spacing, 2 to
3.7 mm slices, more noise, contrast-enhanced blood, heart/esophagus/trachea/aorta annotated,
SegTHOR label values, stored with a flipped y axis). ``scale`` multiplies the in-plane spacing:
the default 2 gives quarter-size slices that train on a CPU; 1 gives the challenges' native
sizes (about 512 x 512).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import Anatomy, sample_anatomy
from .shapes import Grid, capsule, ellipse, paint, tube_into

#: Label priority: later organs win where soft memberships overlap.
PHANTOM_ORGANS = ("lung_left", "lung_right", "heart", "aorta", "esophagus", "trachea", "spinal_cord")


@dataclass(frozen=True)
class SourceProfile:
    name: str
    dataset: str
    label_map: str
    organs: tuple[str, ...]
    spacing_xy: tuple[float, float]  # range at scale 1, mm
    thickness: tuple[float, float]  # slice spacing range, mm
    fov: tuple[float, float]  # reconstruction field of view range, mm
    noise: tuple[float, float]  # HU standard deviation range
    blood: tuple[float, float]  # HU of blood in the great vessels and heart chambers
    myocardium: tuple[float, float]
    liver: tuple[float, float]
    padding: int  # value outside the reconstruction circle
    blur: float  # point-spread sigma in pixels
    orientation: str  # orientation the files are stored in


SOURCES: dict[str, SourceProfile] = {
    "A": SourceProfile(
        name="A", dataset="phantom-structseg", label_map="structseg",
        organs=("lung_left", "lung_right", "heart", "esophagus", "trachea", "spinal_cord"),
        spacing_xy=(1.15, 1.25), thickness=(5.0, 5.0), fov=(380, 420), noise=(10, 16),
        blood=(35, 50), myocardium=(38, 50), liver=(50, 65), padding=-2048, blur=0.6,
        orientation="LPS",
    ),
    "B": SourceProfile(
        name="B", dataset="phantom-segthor", label_map="segthor",
        organs=("heart", "esophagus", "trachea", "aorta"),
        spacing_xy=(0.9, 1.37), thickness=(2.0, 3.7), fov=(340, 470), noise=(22, 35),
        blood=(160, 300), myocardium=(90, 120), liver=(95, 125), padding=-3024, blur=0.8,
        orientation="LAS",
    ),
}


@dataclass
class Tissue:
    """HU values of one patient's scan (depend on the source's protocol)."""

    blood: float
    myocardium: float
    liver: float
    lung: float
    vessel: float


@dataclass
class PhantomCase:
    image: np.ndarray  # (z, y, x) int16 HU, LPS, with padding outside the field of view
    labels: dict[str, np.ndarray]  # organ -> bool (z, y, x), every organ of PHANTOM_ORGANS
    spacing: tuple[float, float, float]  # (x, y, z) mm
    origin: tuple[float, float, float]


def _u(rng: np.random.Generator, pair: tuple[float, float]) -> float:
    return float(rng.uniform(*pair))


class _SliceRenderer:
    """Draws the HU values and organ memberships of one thin axial section."""

    def __init__(self, a: Anatomy, grid: Grid, tissue: Tissue):
        self.a, self.g, self.tis = a, grid, tissue

    # --- helpers -------------------------------------------------------------------------
    def _body_axes(self, t: float) -> tuple[float, float]:
        a = self.a
        if t > 1.0:  # neck and shoulders above the apex
            k = min(1.0, (t - 1.0) / 0.08)
            return a.body_a * (1 - 0.5 * k), a.body_b * (1 - 0.35 * k)
        return a.body_a * (1 - 0.08 * max(0.0, t - 0.6)), a.body_b * (1 - 0.1 * max(0.0, t - 0.6))

    def _esophagus_centre(self, t: float) -> tuple[float, float]:
        a, low = self.a, max(0.0, 0.35 - t)
        return a.es_x + low * 60, a.es_y - low * 70

    def _aorta_desc_centre(self, t: float) -> tuple[float, float]:
        a, low = self.a, max(0.0, 0.35 - t)
        return a.ad_x - low * 30, a.ad_y - low * 8

    def _heart_scale(self, t: float) -> float:
        a = self.a
        if not a.t_h0 < t < a.t_h1:
            return 0.0
        return math.sin(math.pi * (t - a.t_h0) / (a.t_h1 - a.t_h0)) ** 0.5

    # --- structures ----------------------------------------------------------------------
    def render(self, z: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        a, g, tis = self.a, self.g, self.tis
        t = z / a.length
        hu = np.full(g.shape, -1000.0, dtype=np.float32)
        m: dict[str, np.ndarray] = {}
        ba, bb = self._body_axes(t)

        # couch, body, fat, muscle
        ty = a.by + bb + a.table_gap + 6
        paint(hu, capsule(g, (a.bx - 200, ty), (a.bx + 200, ty), 4.0), 120.0)
        body = ellipse(g, a.bx, a.by, ba, bb, power=2.3)
        paint(hu, body, -105.0)
        paint(hu, ellipse(g, a.bx, a.by, ba - a.fat, bb - a.fat, power=2.3), 45.0)
        for side in (1, -1):  # paraspinal muscles
            paint(hu, ellipse(g, a.bx + side * 28, a.canal_y + 10, 24, 22), 50.0)

        in_thorax = 0.0 < t < 1.0
        cav = ellipse(g, a.bx, a.by - 4, a.cav_a, a.cav_b, power=2.4) if t < 1.0 else g.zeros()
        paint(hu, cav * body, -70.0)  # mediastinal / abdominal fat as the cavity's background
        self._abdomen(hu, t, cav)
        excl = self._mediastinum(t)
        if in_thorax:
            for side, name in ((1, "lung_left"), (-1, "lung_right")):
                lung = self._lung(t, side) * (1 - excl)
                m[name] = lung
                paint(hu, lung, tis.lung + 45 * (g.y - a.by) / a.cav_b)
            self._vessels(hu, z, np.maximum(m["lung_left"], m["lung_right"]))
        self._heart(hu, m, t)
        self._aorta(hu, m, t)
        self._esophagus(hu, m, t, z)
        self._trachea(hu, m, t)
        self._spine(hu, m, z)
        self._ribs(hu, z, t)
        for name in PHANTOM_ORGANS:
            m.setdefault(name, g.zeros())
        return hu, m

    def _lung(self, t: float, side: int) -> np.ndarray:
        a, g = self.a, self.g
        la = (a.cav_a - a.med_w) / 2 + 4
        cx, cy = a.bx + side * (a.med_w + la - 4), a.by - 4
        sa, sb = la, a.cav_b * 0.97
        if t > 0.78:  # apex: the lung narrows to a dome, set back posteriorly
            k = math.sqrt(max(0.0, 1 - ((t - 0.78) / 0.22) ** 2))
            sa, sb = sa * k, sb * k
            cy += a.cav_b * (1 - k) * 0.4
        lung = ellipse(g, cx, cy, sa, sb, power=2.6)
        dome_t = a.dome_l if side > 0 else a.dome_r
        if t < dome_t:  # the diaphragm dome rises into the base, leaving a posterior recess
            k = math.sqrt(1 - t / dome_t)
            dome = ellipse(g, cx - side * 0.15 * la, cy - 0.3 * sb, la * 1.3 * k, a.cav_b * 1.15 * k)
            lung = lung * (1 - dome)
        return lung

    def _mediastinum(self, t: float) -> np.ndarray:
        """Everything the lungs must stay out of (organs plus a few mm of tissue)."""
        a, g = self.a, self.g
        parts = [
            ellipse(g, a.bx, a.by - 20, a.med_w, a.cav_b * 0.9),
            ellipse(g, a.bx, a.vb_y, a.vb_r + 6, a.vb_r + 6),
            ellipse(g, a.bx, a.canal_y, a.canal_r + 12, a.canal_r + 14),
        ]
        hs = self._heart_scale(t)
        if hs:
            parts.append(ellipse(g, a.h_x, a.h_y, a.h_a * hs + 7, a.h_b * hs + 7, a.h_angle))
        dx, dy = self._aorta_desc_centre(t)
        if t < a.t_arch + 0.03:
            parts.append(ellipse(g, dx, dy, a.ad_r + 4, a.ad_r + 4))
        if a.t_h1 - 0.12 < t < a.t_arch + 0.05:
            parts.append(ellipse(g, a.aa_x, a.aa_y, a.aa_r + 5, a.aa_r + 5))
        if a.t_arch < t < a.t_arch + 0.06:
            parts.append(capsule(g, (a.aa_x, a.aa_y), (dx, dy), a.ad_r + 5))
        ex, ey = self._esophagus_centre(t)
        parts.append(ellipse(g, ex, ey, a.es_a + 4, a.es_b + 4))
        if t > a.t_carina - 0.09:
            parts.append(ellipse(g, a.tr_x, a.tr_y, a.tr_r + 5, a.tr_r + 5))
        return np.maximum.reduce(parts)

    def _abdomen(self, hu: np.ndarray, t: float, cav: np.ndarray) -> None:
        a, g, tis = self.a, self.g, self.tis
        if t >= max(a.dome_r, a.dome_l):
            return
        for side, dome_t in ((-1, a.dome_r), (1, a.dome_l)):
            if t >= dome_t:
                continue
            k = math.sqrt(1 - max(t, 0.0) / dome_t) if t > 0 else 1.0
            organ = ellipse(g, a.bx + side * a.cav_a * 0.45, a.by - 4 - 0.25 * a.cav_b, a.cav_a * 0.75 * k, a.cav_b * 1.05 * k)
            paint(hu, organ * cav, tis.liver if side < 0 else 35.0)
            if side > 0:  # gastric air bubble under the left dome
                bubble = ellipse(g, a.bx + a.cav_a * 0.45, a.by - 0.55 * a.cav_b, 22 * k, 14 * k)
                paint(hu, bubble * cav, -950.0)

    def _vessels(self, hu: np.ndarray, z: float, lungs: np.ndarray) -> None:
        acc = self.g.zeros()
        for v in self.a.vessels:
            tube_into(acc, self.g, v.p0, v.p1, v.radius, z)
        paint(hu, acc * lungs, self.tis.vessel)

    def _heart(self, hu: np.ndarray, m: dict[str, np.ndarray], t: float) -> None:
        a, g, tis = self.a, self.g, self.tis
        hs = self._heart_scale(t)
        if not hs:
            return
        paint(hu, ellipse(g, a.h_x, a.h_y, a.h_a * hs + 4, a.h_b * hs + 4, a.h_angle), -85.0)
        heart = ellipse(g, a.h_x, a.h_y, a.h_a * hs, a.h_b * hs, a.h_angle)
        paint(hu, heart, tis.myocardium)
        paint(hu, ellipse(g, a.h_x - 4, a.h_y - 2, a.h_a * hs * 0.68, a.h_b * hs * 0.65, a.h_angle), tis.blood * 0.9)
        m["heart"] = heart

    def _aorta(self, hu: np.ndarray, m: dict[str, np.ndarray], t: float) -> None:
        a, g, tis = self.a, self.g, self.tis
        parts = []
        dx, dy = self._aorta_desc_centre(t)
        if t < a.t_arch + 0.03:
            parts.append(ellipse(g, dx, dy, a.ad_r, a.ad_r * 0.95))
        if a.t_h1 - 0.1 < t < a.t_arch + 0.03:
            parts.append(ellipse(g, a.aa_x, a.aa_y, a.aa_r, a.aa_r))
            # pulmonary trunk and superior vena cava: unlabelled neighbours of the same density
            if t < a.t_h1 + 0.08:
                paint(hu, ellipse(g, a.aa_x + a.aa_r + 13, a.aa_y + 6, 12, 11), tis.blood * 0.95)
            paint(hu, ellipse(g, a.aa_x - a.aa_r - 9, a.aa_y + 6, 9, 8), tis.blood * 0.7 + 10)
        if a.t_arch < t < a.t_arch + 0.06:
            parts.append(capsule(g, (a.aa_x, a.aa_y), (dx, dy), a.ad_r))
        if parts:
            aorta = np.maximum.reduce(parts)
            paint(hu, aorta, tis.blood)
            m["aorta"] = aorta

    def _esophagus(self, hu: np.ndarray, m: dict[str, np.ndarray], t: float, z: float) -> None:
        a, g = self.a, self.g
        if t < -0.03:
            return
        ex, ey = self._esophagus_centre(t)
        eso = ellipse(g, ex, ey, a.es_a, a.es_b, 0.2)
        paint(hu, eso, 42.0)
        for z0, z1, r in a.es_air:
            if z0 <= z <= z1:
                paint(hu, ellipse(g, ex, ey, r * 1.4, r), -950.0)
        m["esophagus"] = eso

    def _trachea(self, hu: np.ndarray, m: dict[str, np.ndarray], t: float) -> None:
        a, g = self.a, self.g
        below = (a.t_carina - t) * a.length  # mm below the carina
        if below <= 0:
            centres = [(a.tr_x, a.tr_y, a.tr_r)]
        elif below < 28:
            centres = [
                (a.tr_x + 7 + below * 1.0, a.tr_y + 3 + below * 0.2, a.tr_r * 0.72),
                (a.tr_x - 7 - below * 0.55, a.tr_y + 3 + below * 0.2, a.tr_r * 0.78),
            ]
        else:
            return
        walls = np.maximum.reduce([ellipse(g, x, y, r + 1.8, r * 0.92 + 1.8) for x, y, r in centres])
        paint(hu, walls, 60.0)
        for x, y, r in centres:
            paint(hu, ellipse(g, x, y, r, r * 0.92), -1000.0)
        if below < 14:  # the label covers the trachea and the first centimetre or so of the main bronchi
            m["trachea"] = walls

    def _spine(self, hu: np.ndarray, m: dict[str, np.ndarray], z: float) -> None:
        a, g = self.a, self.g
        disc = (z - a.disc_phase) % a.disc_period < a.disc_thick
        if disc:
            paint(hu, ellipse(g, a.bx, a.vb_y, a.vb_r * 1.1, a.vb_r), 85.0)
        else:
            paint(hu, ellipse(g, a.bx, a.vb_y, a.vb_r * 1.1, a.vb_r), 650.0)
            paint(hu, ellipse(g, a.bx, a.vb_y, a.vb_r * 1.1 - 2.2, a.vb_r - 2.2), 230.0)
            paint(hu, ellipse(g, a.bx, a.canal_y + a.canal_r + 14, 4, 14), 480.0)
            for side in (1, -1):
                paint(hu, ellipse(g, a.bx + side * (a.canal_r + 11), a.canal_y - 2, 12, 5), 480.0)
        paint(hu, ellipse(g, a.bx, a.canal_y, a.canal_r + 4.5, a.canal_r + 4.5), 520.0)
        paint(hu, ellipse(g, a.bx, a.canal_y, a.canal_r, a.canal_r * 0.9), 8.0)
        cord = ellipse(g, a.bx, a.canal_y - 0.5, a.cord_a, a.cord_b)
        paint(hu, cord, 36.0)
        m["spinal_cord"] = cord

    def _ribs(self, hu: np.ndarray, z: float, t: float) -> None:
        a, g = self.a, self.g
        if t > 1.1 or t < -0.15:
            return
        ra, rb = a.cav_a + 7, a.cav_b + 7
        for rib in a.ribs:
            if not rib.z_top - rib.drop <= z <= rib.z_top:
                continue
            phi = 0.3 + (rib.z_top - z) / rib.drop * 2.3
            x = a.bx + rib.side * ra * math.sin(phi)
            y = a.by - 4 + rb * math.cos(phi)
            angle = math.atan2(-rb * math.sin(phi), rib.side * ra * math.cos(phi))
            cartilage = phi > 2.15
            paint(hu, ellipse(g, x, y, rib.half_len, 4.2, angle), 130.0 if cartilage else 520.0)
            if not cartilage:
                paint(hu, ellipse(g, x, y, rib.half_len - 2, 2.2, angle), 220.0)
        if 0.25 < t < 0.95:  # sternum
            sy = a.by - a.body_b + a.fat + a.muscle * 0.4 + 7
            paint(hu, ellipse(g, a.bx, sy, 15, 7), 420.0)
            paint(hu, ellipse(g, a.bx, sy, 12, 4.5), 200.0)


def _tissue(rng: np.random.Generator, profile: SourceProfile) -> Tissue:
    blood = _u(rng, profile.blood)
    return Tissue(
        blood=blood,
        myocardium=_u(rng, profile.myocardium),
        liver=_u(rng, profile.liver),
        lung=float(rng.uniform(-880, -830)),
        vessel=blood * 0.8 if blood > 100 else 40.0,
    )


def generate_case(source: str | SourceProfile, seed: int, index: int, scale: float = 2.0) -> PhantomCase:
    """Render one synthetic patient; the same (source, seed, index, scale) always gives the same case."""
    profile = SOURCES[source] if isinstance(source, str) else source
    rng = np.random.default_rng([seed, ord(profile.name[0]), index])
    anat = sample_anatomy(rng)
    tissue = _tissue(rng, profile)
    sp_xy = _u(rng, profile.spacing_xy) * scale
    thick = _u(rng, profile.thickness)
    fov = _u(rng, profile.fov)
    n_xy = int(round(fov / sp_xy / 2)) * 2
    grid = Grid(n_xy, n_xy, (sp_xy, sp_xy))
    z_lo, z_hi = -anat.margin_low, anat.length + anat.margin_high
    n_z = max(1, int(math.ceil((z_hi - z_lo) / thick)))
    renderer = _SliceRenderer(anat, grid, tissue)

    subs = max(1, int(math.ceil(thick / 2.0)))
    image = np.empty((n_z, n_xy, n_xy), dtype=np.float32)
    member = {name: np.empty((n_z, n_xy, n_xy), dtype=np.float32) for name in PHANTOM_ORGANS}
    for k in range(n_z):
        zc = z_lo + (k + 0.5) * thick
        acc_hu, acc_m = grid.zeros(), {name: grid.zeros() for name in PHANTOM_ORGANS}
        for j in range(subs):  # through-plane partial volume: average thin sections
            hu, m = renderer.render(zc + ((j + 0.5) / subs - 0.5) * thick)
            acc_hu += hu
            for name in PHANTOM_ORGANS:
                acc_m[name] += m[name]
        image[k] = acc_hu / subs
        for name in PHANTOM_ORGANS:
            member[name][k] = acc_m[name] / subs

    lungs = np.maximum(member["lung_left"], member["lung_right"])
    texture = ndimage.gaussian_filter(rng.normal(0, 1, image.shape).astype(np.float32), (0.7, 2.5, 2.5))
    image += lungs * texture * (25 / (texture.std() + 1e-6))
    image = ndimage.gaussian_filter(image, (0, profile.blur, profile.blur))
    noise = ndimage.gaussian_filter(rng.normal(0, 1, image.shape).astype(np.float32), (0, 0.6, 0.6))
    image += noise * (_u(rng, profile.noise) / (noise.std() + 1e-6))
    r2 = grid.x**2 + grid.y**2
    image[:, r2 > (fov / 2) ** 2] = profile.padding
    hu = np.clip(np.round(image), -3024, 3071).astype(np.int16)

    labels = _hard_labels(member)
    return PhantomCase(
        image=hu,
        labels=labels,
        spacing=(sp_xy, sp_xy, thick),
        origin=(float(grid.x[0, 0]), float(grid.y[0, 0]), z_lo + 0.5 * thick),
    )


def _hard_labels(member: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One organ per voxel: membership above one half, later organs winning ties."""
    owner = np.zeros(next(iter(member.values())).shape, dtype=np.uint8)
    for i, name in enumerate(PHANTOM_ORGANS, start=1):
        owner[member[name] > 0.5] = i
    return {name: owner == i for i, name in enumerate(PHANTOM_ORGANS, start=1)}
