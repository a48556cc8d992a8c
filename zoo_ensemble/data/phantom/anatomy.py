"""Random patient anatomy for the synthetic thoracic phantom.

All lengths are in mm in a patient frame: x towards the patient's left, y towards posterior,
z towards superior, z = 0 at the lowest point of the lung bases and z = ``length`` at the lung
apex; ``t = z / length`` is the relative height used by the shape profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Vessel:
    p0: np.ndarray
    p1: np.ndarray
    radius: float


@dataclass
class Rib:
    side: int  # +1 left, -1 right
    z_top: float  # where it leaves the spine
    drop: float  # how far it descends on its way round the chest
    half_len: float  # tangential half-length of its cross-section


@dataclass
class Anatomy:
    length: float
    margin_low: float
    margin_high: float
    bx: float
    by: float
    body_a: float
    body_b: float
    fat: float
    muscle: float
    cav_a: float
    cav_b: float
    med_w: float
    # spine
    vb_r: float
    vb_y: float
    canal_y: float
    canal_r: float
    cord_a: float
    cord_b: float
    disc_period: float
    disc_phase: float
    disc_thick: float
    # airway and esophagus
    tr_x: float
    tr_y: float
    tr_r: float
    t_carina: float
    es_x: float
    es_y: float
    es_a: float
    es_b: float
    es_air: list[tuple[float, float, float]]  # (z0, z1, radius)
    # heart and vessels
    h_x: float
    h_y: float
    h_a: float
    h_b: float
    h_angle: float
    t_h0: float
    t_h1: float
    ad_x: float
    ad_y: float
    ad_r: float
    aa_x: float
    aa_y: float
    aa_r: float
    t_arch: float
    dome_r: float
    dome_l: float
    table_gap: float
    ribs: list[Rib] = field(default_factory=list)
    vessels: list[Vessel] = field(default_factory=list)


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient: size, position and shape of every structure.

    The helpers draw in a fixed order (trunk, spine and airway, great vessels, heart, the rest),
    so that a seed gives the same patient in every release of the generator."""
    d: dict = _trunk(rng)
    d.update(_spine_and_airway(rng, d))
    d.update(_great_vessels(rng, d))
    d.update(_heart(rng, d))
    length = _u(rng, 225, 290)
    anat = Anatomy(length=length, **d, **_the_rest(rng), es_air=[], dome_l=0.0)
    anat.dome_l = anat.dome_r - _u(rng, 0.02, 0.06)
    for _ in range(int(rng.integers(0, 4))):  # air pockets in the esophageal lumen
        z0 = _u(rng, 0.1, 0.95) * length
        anat.es_air.append((z0, z0 + _u(rng, 8, 40), _u(rng, 1.5, 3.5)))
    anat.ribs = _sample_ribs(rng, anat)
    anat.vessels = _sample_vessels(rng, anat)
    return anat


def _trunk(rng: np.random.Generator) -> dict:
    body_a, body_b = _u(rng, 145, 180), _u(rng, 100, 128)
    fat, muscle = _u(rng, 6, 24), _u(rng, 8, 14)
    bx, by = _u(rng, -8, 8), _u(rng, -14, 4)
    return dict(body_a=body_a, body_b=body_b, fat=fat, muscle=muscle, cav_a=body_a - fat - muscle - 14,
                cav_b=body_b - fat - muscle - 12, bx=bx, by=by)


def _spine_and_airway(rng: np.random.Generator, d: dict) -> dict:
    vb_r = _u(rng, 14, 18)
    canal_r = _u(rng, 7.5, 9.0)
    canal_y = d["by"] + d["body_b"] - d["fat"] - _u(rng, 26, 32)
    vb_y = canal_y - canal_r - vb_r - 2.5
    tr_r = _u(rng, 7.5, 10.5)
    es_a, es_b = _u(rng, 7, 10), _u(rng, 5, 7)
    es_y = vb_y - vb_r - es_b - _u(rng, 1.5, 3.5)
    tr_y = es_y - es_b - tr_r - _u(rng, 2, 5)
    tr_x = d["bx"] + _u(rng, -4, 3)
    es_x = tr_x + _u(rng, 4, 10)
    return dict(vb_r=vb_r, canal_r=canal_r, canal_y=canal_y, vb_y=vb_y, tr_r=tr_r, es_a=es_a, es_b=es_b,
                es_y=es_y, tr_y=tr_y, tr_x=tr_x, es_x=es_x)


def _great_vessels(rng: np.random.Generator, d: dict) -> dict:
    ad_r = _u(rng, 9.5, 12.5)
    ad_dy = _u(rng, 2, 10)
    reach = d["vb_r"] + ad_r + _u(rng, 3, 6)
    ad_x = d["bx"] + math.sqrt(max(reach**2 - ad_dy**2, 1.0))
    ad_y = d["vb_y"] - ad_dy
    aa_r = _u(rng, 12, 16)
    aa_x = d["bx"] + _u(rng, -12, -3)
    aa_y = d["tr_y"] - _u(rng, 28, 40)
    return dict(ad_r=ad_r, ad_x=ad_x, ad_y=ad_y, aa_r=aa_r, aa_x=aa_x, aa_y=aa_y)


def _heart(rng: np.random.Generator, d: dict) -> dict:
    h_a, h_b, h_angle = _u(rng, 50, 68), _u(rng, 40, 54), _u(rng, 0.2, 0.6)
    h_x = d["bx"] + _u(rng, 12, 30)
    ext_y = math.hypot(h_a * math.sin(h_angle), h_b * math.cos(h_angle))
    # The heart lies in front of the esophagus and descending aorta, behind the sternum.
    behind = d["es_y"] - d["es_b"] - 3
    h_y = min(d["by"] - _u(rng, 0, 15), behind - ext_y, d["ad_y"] - d["ad_r"] - 4 - ext_y * 0.8)
    front = d["by"] - d["cav_b"] - 4
    if h_y - ext_y < front:
        scale = max(0.6, (behind - front) / (2 * ext_y))
        h_a, h_b, ext_y = h_a * scale, h_b * scale, ext_y * scale
        h_y = front + ext_y
    return dict(h_x=h_x, h_y=h_y, h_a=h_a, h_b=h_b, h_angle=h_angle)


def _the_rest(rng: np.random.Generator) -> dict:
    # drawn in this order after the length
    return dict(
        margin_low=_u(rng, 5, 45), margin_high=_u(rng, 5, 40), med_w=_u(rng, 10, 16),
        cord_a=_u(rng, 4.8, 6.5), cord_b=_u(rng, 3.8, 4.8),
        disc_period=_u(rng, 24, 30), disc_phase=_u(rng, 0, 30), disc_thick=_u(rng, 5, 8),
        t_carina=_u(rng, 0.55, 0.66), t_h0=_u(rng, 0.04, 0.12), t_h1=_u(rng, 0.45, 0.55),
        t_arch=_u(rng, 0.70, 0.78), dome_r=_u(rng, 0.24, 0.34), table_gap=_u(rng, 2, 12),
    )


def _sample_ribs(rng: np.random.Generator, a: Anatomy) -> list[Rib]:
    ribs = []
    gap = _u(rng, 0.085, 0.1) * a.length
    for side in (1, -1):
        for i in range(12):
            z_top = a.length * 1.05 - i * gap + _u(rng, -3, 3)
            ribs.append(Rib(side, z_top, _u(rng, 50, 85), _u(rng, 6, 10)))
    return ribs


def _sample_vessels(rng: np.random.Generator, a: Anatomy) -> list[Vessel]:
    """Pulmonary vessel trees branching out of each hilum."""
    vessels: list[Vessel] = []
    z_hilum = a.t_carina * a.length - 20
    for side in (1, -1):
        hilum = np.array([a.bx + side * (a.med_w + 22), a.tr_y + 10, z_hilum])
        for _ in range(int(rng.integers(5, 8))):
            direction = np.array([side * _u(rng, 0.3, 1.0), _u(rng, -0.7, 0.7), _u(rng, -1.0, 1.0)])
            _grow(rng, vessels, hilum, direction, _u(rng, 3.0, 4.5), depth=0)
    return vessels


def _grow(rng: np.random.Generator, out: list[Vessel], start: np.ndarray, direction: np.ndarray, radius: float, depth: int) -> None:
    direction = direction / np.linalg.norm(direction)
    end = start + direction * _u(rng, 25, 55) * (0.8**depth)
    out.append(Vessel(start, end, radius))
    if depth < 3 and radius > 1.2:
        for _ in range(2):
            turn = direction + rng.normal(0, 0.45, 3)
            _grow(rng, out, end, turn, radius * _u(rng, 0.6, 0.8), depth + 1)
