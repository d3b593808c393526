"""Experimental: full-resolution variational refinement on colour with edge-aware smoothness."""

from __future__ import annotations

import cv2
import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_DERIV = np.array([[1.0, -8.0, 0.0, 8.0, -1.0]], dtype=np.float32) / 12.0
_EPS2 = 1e-6
_ZETA2 = 0.01


def _dx(img):
    return cv2.filter2D(img, -1, _DERIV, borderType=cv2.BORDER_REPLICATE)


def _dy(img):
    return cv2.filter2D(img, -1, _DERIV.T, borderType=cv2.BORDER_REPLICATE)


@_jit
def link_weights(image0, a, b, floor):
    """(2, H, W) float32 weight of the smoothness link from each pixel to its right / lower
    neighbour: max(exp(-a * d**b), floor), d the Euclidean colour difference (0..1 units) of
    the two pixels of ``image0`` (H, W, C); 1 everywhere if a == 0; 0 on links leaving the crop."""
    h, w, c = image0.shape
    out = np.zeros((2, h, w), np.float32)
    for y in range(h):
        for x in range(w):
            for axis in range(2):
                yy = y + axis
                xx = x + 1 - axis
                if yy >= h or xx >= w:
                    continue
                d = np.float32(0.0)
                for k in range(c):
                    t = image0[yy, xx, k] - image0[y, x, k]
                    d += t * t
                out[axis, y, x] = 1.0 if a == 0 else max(np.exp(-a * np.sqrt(d) ** b), floor)
    return out


def refine(image0: np.ndarray, image1: np.ndarray, flow: np.ndarray, *, alpha: float, gamma: float,
           delta: float, warps: int, fixed_point: int, sor: int, omega: float = 1.6,
           edge_a: float = 0.0, edge_b: float = 1.0, edge_floor: float = 0.0,
           edge_sigma: float = 0.0, colour: bool = True,
           mask_outside: bool = False, joint: bool = True) -> np.ndarray:
    """Refine ``flow`` (H, W, 2) from RGB uint8 ``image0`` to ``image1``."""
    i0 = image0.astype(np.float32)
    i1 = image1.astype(np.float32)
    weights = link_weights(i0 / np.float32(255.0), edge_a, edge_b, edge_floor)
    if not colour:
        i0 = cv2.cvtColor(image0, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
        i1 = cv2.cvtColor(image1, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
    h, w, c = i0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    u = np.ascontiguousarray(flow[..., 0], dtype=np.float32)
    v = np.ascontiguousarray(flow[..., 1], dtype=np.float32)

    for _ in range(warps):
        tensors, inside = _linearise(i0, i1, u, v, joint, mask_outside)
        ng = tensors.shape[2] // 2
        gw = np.array([0.5 * delta] * ng + [0.5 * gamma] * ng, np.float32)
        du = np.zeros_like(u)
        dv = np.zeros_like(v)
        _solve(tensors, gw, inside, weights, u, v, du, dv, alpha, fixed_point, sor, omega)
        u = u + du
        v = v + dv
    return np.stack([u, v], axis=-1)


@_jit
def _linearise(i0, i1, u, v, joint, mask_outside):
    """Warp ``i1`` (H, W, C) by the flow (bilinear, coordinates clamped to the frame), take
    central differences (no 1/2 factor) of the mean A of ``i0`` and the warped frame and of their
    difference Z (both edge-padded by 2 px), and return the normalised motion tensors
    (H, W, G, 6) and the in-frame mask (H, W)."""
    h, w, c = i0.shape
    A = np.empty((h + 4, w + 4, c), np.float32)
    Z = np.empty((h + 4, w + 4, c), np.float32)
    inside = np.ones((h, w), np.float32)
    half = np.float32(0.5)
    for y in range(h):
        for x in range(w):
            fx = np.float32(x) + u[y, x]
            fy = np.float32(y) + v[y, x]
            if mask_outside and (fx < 0 or fx > w - 1 or fy < 0 or fy > h - 1):
                inside[y, x] = 0.0
            fx = min(max(fx, np.float32(0.0)), np.float32(w - 1))
            fy = min(max(fy, np.float32(0.0)), np.float32(h - 1))
            x0 = min(int(fx), w - 2)
            y0 = min(int(fy), h - 2)
            ax = fx - np.float32(x0)
            ay = fy - np.float32(y0)
            for k in range(c):
                top = i1[y0, x0, k] + ax * (i1[y0, x0 + 1, k] - i1[y0, x0, k])
                bot = i1[y0 + 1, x0, k] + ax * (i1[y0 + 1, x0 + 1, k] - i1[y0 + 1, x0, k])
                warped = top + ay * (bot - top)
                A[y + 2, x + 2, k] = half * (i0[y, x, k] + warped)
                Z[y + 2, x + 2, k] = warped - i0[y, x, k]
    for arr in (A, Z):
        for y in range(2, h + 2):
            for k in range(c):
                arr[y, 0, k] = arr[y, 1, k] = arr[y, 2, k]
                arr[y, w + 3, k] = arr[y, w + 2, k] = arr[y, w + 1, k]
        for x in range(w + 4):
            for k in range(c):
                arr[0, x, k] = arr[1, x, k] = arr[2, x, k]
                arr[h + 3, x, k] = arr[h + 2, x, k] = arr[h + 1, x, k]
    ng = 1 if joint else c
    out = np.zeros((h, w, 2 * ng, 6), np.float32)
    zeta2 = np.float32(_ZETA2)
    one = np.float32(1.0)
    for y in range(h):
        for x in range(w):
            py = y + 2
            px = x + 2
            for k in range(c):
                g = 0 if joint else k
                ix = A[py, px + 1, k] - A[py, px - 1, k]
                iy = A[py + 1, px, k] - A[py - 1, px, k]
                iz = Z[py, px, k]
                ixz = Z[py, px + 1, k] - Z[py, px - 1, k]
                iyz = Z[py + 1, px, k] - Z[py - 1, px, k]
                ixx = A[py, px + 2, k] - 2 * A[py, px, k] + A[py, px - 2, k]
                iyy = A[py + 2, px, k] - 2 * A[py, px, k] + A[py - 2, px, k]
                ixy = A[py + 1, px + 1, k] - A[py + 1, px - 1, k] - A[py - 1, px + 1, k] \
                    + A[py - 1, px - 1, k]
                _accumulate(out[y, x, g], ix, iy, iz, one / (ix * ix + iy * iy + zeta2))
                _accumulate(out[y, x, ng + g], ixx, ixy, ixz,
                            one / (ixx * ixx + ixy * ixy + zeta2))
                _accumulate(out[y, x, ng + g], ixy, iyy, iyz,
                            one / (iyy * iyy + ixy * ixy + zeta2))
    return out, inside


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _accumulate(t, a, b, c, n):
    t[0] += n * a * a
    t[1] += n * a * b
    t[2] += n * b * b
    t[3] += n * a * c
    t[4] += n * b * c
    t[5] += n * c * c


@_jit
def _solve(tensors, gw, inside, weights, u, v, du, dv, alpha, fixed_point, sor, omega):
    """Fixed-point iterations (lagged robust weights) and SOR sweeps on the increment du, dv
    (H, W), updated in place. tensors (H, W, G, 6); weights (2, H, W) link weights right/down."""
    ng = tensors.shape[2]
    h, w = u.shape
    f0 = np.float32(0.0)
    # padded copies: a zero link weight outside the image removes every border branch
    pdu = np.zeros((h + 2, w + 2), np.float32)
    pdv = np.zeros((h + 2, w + 2), np.float32)
    pdu[1:-1, 1:-1] = du
    pdv[1:-1, 1:-1] = dv
    sr = np.zeros((h + 2, w + 2), np.float32)          # link (y, x) -> (y, x + 1)
    sd = np.zeros((h + 2, w + 2), np.float32)          # link (y, x) -> (y + 1, x)
    a12 = np.empty((h, w), np.float32)
    b1 = np.empty((h, w), np.float32)
    b2 = np.empty((h, w), np.float32)
    inv1 = np.empty((h, w), np.float32)
    inv2 = np.empty((h, w), np.float32)
    half_alpha = np.float32(0.5 * alpha)
    om = np.float32(omega)
    one_om = np.float32(1.0 - omega)
    eps2 = np.float32(_EPS2)
    zeta2 = np.float32(_ZETA2)
    for _ in range(fixed_point):
        for y in range(h):
            for x in range(w):
                xr = x + 1 if x + 1 < w else x
                yd = y + 1 if y + 1 < h else y
                p = pdu[y + 1, x + 1]
                q = pdv[y + 1, x + 1]
                ux = u[y, xr] + pdu[y + 1, xr + 1] - u[y, x] - p
                uy = u[yd, x] + pdu[yd + 1, x + 1] - u[y, x] - p
                vx = v[y, xr] + pdv[y + 1, xr + 1] - v[y, x] - q
                vy = v[yd, x] + pdv[yd + 1, x + 1] - v[y, x] - q
                ps = half_alpha / np.sqrt(ux * ux + uy * uy + vx * vx + vy * vy + eps2)
                sr[y + 1, x + 1] = ps * weights[0, y, x]
                sd[y + 1, x + 1] = ps * weights[1, y, x]
        for y in range(h):
            for x in range(w):
                p = pdu[y + 1, x + 1]
                q = pdv[y + 1, x + 1]
                s11 = zeta2
                s12 = f0
                s22 = zeta2
                t1 = f0
                t2 = f0
                for g in range(ng):
                    j11 = tensors[y, x, g, 0]
                    j12 = tensors[y, x, g, 1]
                    j22 = tensors[y, x, g, 2]
                    j13 = tensors[y, x, g, 3]
                    j23 = tensors[y, x, g, 4]
                    e = p * p * j11 + 2 * p * q * j12 + q * q * j22 + 2 * p * j13 \
                        + 2 * q * j23 + tensors[y, x, g, 5]
                    wgt = inside[y, x] * gw[g] / np.sqrt(max(e, f0) + eps2)
                    s11 += wgt * j11
                    s12 += wgt * j12
                    s22 += wgt * j22
                    t1 -= wgt * j13
                    t2 -= wgt * j23
                # links to the four neighbours; the fixed flow's part goes into b
                se = sr[y + 1, x + 1]
                sw = sr[y + 1, x]
                ss = sd[y + 1, x + 1]
                sn = sd[y, x + 1]
                xr = x + 1 if x + 1 < w else x
                xl = x - 1 if x > 0 else x
                yd = y + 1 if y + 1 < h else y
                yu = y - 1 if y > 0 else y
                uc = u[y, x]
                vc = v[y, x]
                t1 += se * (u[y, xr] - uc) + sw * (u[y, xl] - uc) + ss * (u[yd, x] - uc) \
                    + sn * (u[yu, x] - uc)
                t2 += se * (v[y, xr] - vc) + sw * (v[y, xl] - vc) + ss * (v[yd, x] - vc) \
                    + sn * (v[yu, x] - vc)
                total = se + sw + ss + sn
                a12[y, x] = s12
                b1[y, x] = t1
                b2[y, x] = t2
                inv1[y, x] = om / (s11 + total)
                inv2[y, x] = om / (s22 + total)
        for _ in range(sor):
            for y in range(h):
                for x in range(w):
                    se = sr[y + 1, x + 1]
                    sw = sr[y + 1, x]
                    ss = sd[y + 1, x + 1]
                    sn = sd[y, x + 1]
                    nu = se * pdu[y + 1, x + 2] + sw * pdu[y + 1, x] + ss * pdu[y + 2, x + 1] \
                        + sn * pdu[y, x + 1]
                    nv = se * pdv[y + 1, x + 2] + sw * pdv[y + 1, x] + ss * pdv[y + 2, x + 1] \
                        + sn * pdv[y, x + 1]
                    pu = one_om * pdu[y + 1, x + 1] + inv1[y, x] * (
                        b1[y, x] - a12[y, x] * pdv[y + 1, x + 1] + nu)
                    pdu[y + 1, x + 1] = pu
                    pdv[y + 1, x + 1] = one_om * pdv[y + 1, x + 1] + inv2[y, x] * (
                        b2[y, x] - a12[y, x] * pu + nv)
    du[:] = pdu[1:-1, 1:-1]
    dv[:] = pdv[1:-1, 1:-1]


def refine_pyramid(image0, image1, flow, *, levels: int = 2, coarse_warps: int | None = None,
                   **kw):
    """Coarse to fine: refine at 1/2**(levels-1), ..., full resolution, from ``flow``."""
    h, w = image0.shape[:2]
    current = None
    for level in range(levels - 1, -1, -1):
        f = 2 ** level
        size = (w // f, h // f)
        a = cv2.resize(image0, size, interpolation=cv2.INTER_AREA) if f > 1 else image0
        b = cv2.resize(image1, size, interpolation=cv2.INTER_AREA) if f > 1 else image1
        if current is None:
            current = cv2.resize(flow, size, interpolation=cv2.INTER_AREA) / f if f > 1 else flow
        else:
            current = cv2.resize(current, size, interpolation=cv2.INTER_LINEAR) * 2
        args = dict(kw)
        if level > 0 and coarse_warps is not None:
            args["warps"] = coarse_warps
        current = refine(a, b, current, **args)
    return current
