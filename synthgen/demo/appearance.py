"""Appearance domains of the demo people: how a clip's person looks, apart from how it moves.

Two domains, for a sim-to-real proxy (the paper's experiment in miniature: train on one look,
test on another that appearance crosses badly and motion well):

* ``"A"``: the demo's original look (``render.sample_appearance``): solid, striped, checked or
  blotchy clothing in uniform random RGB colours, one white light, hard aliased edges, SMPL-like
  body shapes (betas ~ N(0, 1) clipped to +-2.5).
* ``"B"``: another look on every axis: plaid, dotted, gradient and speckled clothing in saturated
  or muted palettes, a tinted light with low ambient, the person blurred by a per-clip Gaussian
  (soft, anti-aliased-looking edges that bleed into the backdrop) with sensor noise, and heavier
  bodies of a wider stature range (girth, belly and limb thickness betas in [1.5, 3], stature
  beta +-[1, 2.5]).

Frames: textures are painted on the rest-pose mesh (model frame, metres, y up); images are
(H, W, 3) uint8 RGB, pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from synthgen.demo.body_model import NUM_BETAS
from synthgen.demo.render import (_BOTTOM, _SLEEVES, _TOP, _TROUSER_LEGS, Appearance,
                                   clothing_masks, sample_appearance)
from synthgen.core.joints import SMPL_INDEX

DOMAINS = ("A", "B")
#: Domain B: betas (girth, belly, limb thickness) drawn in this range, and |stature beta| in this.
_HEAVY_BETAS = (1, 7, 9)
_HEAVY_RANGE = (1.5, 3.0)
_STATURE_RANGE = (1.0, 2.5)
#: Domain B: Gaussian blur sigma of the person (pixels) and sensor noise std (8-bit levels).
_BLUR_SIGMA_PX = (0.8, 1.8)
_NOISE_LEVELS = (2.0, 6.0)
_PATTERNS_B = ("plaid", "dots", "gradient", "speckle")


@dataclass(frozen=True)
class Look:
    """A clip's appearance in a domain: ``appearance`` (render's), and the image finish:
    ``blur_sigma`` (pixels, 0 = none) and ``noise`` (std of added noise, 8-bit levels, 0 = none);
    ``seed`` seeds the noise of every frame."""

    appearance: Appearance
    blur_sigma: float = 0.0
    noise: float = 0.0
    seed: int = 0


def check_domain(domain: str) -> str:
    """``domain`` if it is one of ``DOMAINS``; else a ValueError saying which are."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown appearance domain {domain!r}; known: {DOMAINS}")
    return domain


def sample_betas(domain: str, rng: np.random.Generator) -> np.ndarray:
    """Shape coefficients (10,) of one person of ``domain``."""
    betas = np.clip(rng.normal(size=NUM_BETAS), -2.5, 2.5)
    if check_domain(domain) == "B":
        betas[list(_HEAVY_BETAS)] = rng.uniform(*_HEAVY_RANGE, size=len(_HEAVY_BETAS))
        betas[0] = rng.choice([-1.0, 1.0]) * rng.uniform(*_STATURE_RANGE)
    return betas


def sample_look(domain: str, rest_vertices, faces, face_joint, rng: np.random.Generator) -> Look:
    """Draw one clip's look in ``domain`` (arguments as ``render.sample_appearance``)."""
    appearance = sample_appearance(rest_vertices, faces, face_joint, rng)
    if check_domain(domain) == "A":
        return Look(appearance)
    centre = rest_vertices[faces].mean(axis=1)
    albedo = appearance.albedo.copy()
    # Undo A's clothing: every clothable face back to the skin colour (the hands are never clothed).
    skin = albedo[np.flatnonzero(face_joint == SMPL_INDEX["left_wrist"])[0]]
    albedo[np.isin(face_joint, np.concatenate([_TOP, _SLEEVES, _BOTTOM, _TROUSER_LEGS]))] = skin
    top, bottom = clothing_masks(face_joint, rng, sleeves=0.5, trouser_legs=0.5)
    words = []
    for label, mask in (("top", top), ("bottom", bottom)):
        pattern = _PATTERNS_B[rng.integers(len(_PATTERNS_B))]
        albedo[mask] = _paint_b(pattern, centre[mask], rng)
        words.append(f"{label}={pattern}")
    tint = rng.uniform(0.75, 1.0, 3)
    tint /= tint.max()
    light = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0), rng.uniform(-0.5, 0.3), -0.6])
    height, width = appearance.background.shape[:2]
    appearance = replace(appearance, albedo=np.clip(albedo * tint, 0, 1),
                         light_dir=light / np.linalg.norm(light),
                         ambient=float(rng.uniform(0.12, 0.3)),
                         background=_backdrop_b(rng, height, width),
                         cloth="B " + " ".join(words))
    return Look(appearance, blur_sigma=float(rng.uniform(*_BLUR_SIGMA_PX)),
                noise=float(rng.uniform(*_NOISE_LEVELS)), seed=int(rng.integers(2**31)))


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Two RGB colours in [0, 1], (2, 3): saturated or muted, never A's uniform cube."""
    hue = rng.uniform(0, 180, 2)
    saturated = rng.random() < 0.5
    sat = rng.uniform(200, 255, 2) if saturated else rng.uniform(20, 80, 2)
    val = rng.uniform(150, 255, 2) if saturated else rng.uniform(60, 200, 2)
    hsv = np.stack([hue, sat, val], axis=1).astype(np.uint8)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float64) / 255.0


def _paint_b(pattern: str, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colours (N, 3) of a domain-B clothing pattern at rest-pose points (N, 3), metres."""
    base, second = _palette(rng)
    if pattern == "plaid":
        period = rng.uniform(0.05, 0.15)
        u = np.sin(2 * np.pi * points[:, 0] / period) > 0.3
        v = np.sin(2 * np.pi * points[:, 1] / period) > 0.3
        mix = 0.5 * u + 0.5 * v
    elif pattern == "dots":
        period = rng.uniform(0.04, 0.08)
        cell = (points[:, :2] / period) % 1.0 - 0.5
        mix = (np.linalg.norm(cell, axis=1) < 0.25).astype(float)
    elif pattern == "gradient":
        mix = np.clip((points[:, 1] - points[:, 1].min()) / max(np.ptp(points[:, 1]), 1e-6), 0, 1)
    else:  # speckle: independent random colour per face
        mix = rng.random(len(points))
    return (1 - mix)[:, None] * base + mix[:, None] * second


def _backdrop_b(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dark vertical-gradient backdrop with coarse blocks, (H, W, 3) uint8."""
    top, bottom = rng.uniform(0, 90, 3), rng.uniform(60, 160, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    field = (1 - ramp) * top + ramp * bottom
    blocks = cv2.resize(rng.uniform(-25, 25, size=(3, 4, 3)), (width, height),
                        interpolation=cv2.INTER_NEAREST)
    return np.clip(field + blocks, 0, 255).astype(np.uint8)


def finish_frame(look: Look, rgb: np.ndarray, frame: int) -> np.ndarray:
    """The look's image finish of one rendered frame (H, W, 3) uint8: Gaussian blur (sigma in
    pixels) and sensor noise (seeded by the look's seed and ``frame``); unchanged for none."""
    if look.blur_sigma <= 0 and look.noise <= 0:
        return rgb
    out = rgb.astype(np.float32)
    if look.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), look.blur_sigma)
    if look.noise > 0:
        out += np.random.default_rng([look.seed, frame]).normal(0, look.noise, out.shape).astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
