"""Experimental: full-resolution variational refinement on colour with edge-aware smoothness."""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
_EPS2 = 1e-6
_ZETA2 = 0.01


@_jit
def link_weights(image0, a, b, floor):
    """(2, H, W) float32 weight of the smoothness link from each pixel to its right / lower
    neighbour: max(exp(-a * d**b), floor), d the Euclidean colour difference (0..1 units) of
    the two pixels of ``image0`` (C, H, W); 1 everywhere if a == 0; 0 on links leaving the crop."""
    c, h, w = image0.shape
    out = np.zeros((2, h, w), np.float32)
    for axis in range(2):
        for y in range(h - axis):
            d = np.zeros(w, np.float32)
            for k in range(c):
                for x in range(w - 1 + axis):
                    t = image0[k, y + axis, x + 1 - axis] - image0[k, y, x]
                    d[x] += t * t
            for x in range(w - 1 + axis):
                if a == 0:
                    out[axis, y, x] = 1.0
                elif b == 1:
                    out[axis, y, x] = max(np.exp(-a * np.sqrt(d[x])), floor)
                else:
                    out[axis, y, x] = max(np.exp(-a * np.sqrt(d[x]) ** b), floor)
    return out


def refine(image0: np.ndarray, image1: np.ndarray, flow: np.ndarray, *, alpha: float, gamma: float,
           delta: float, warps: int, fixed_point: int, sor: int, omega: float = 1.6,
           edge_a: float = 0.0, edge_b: float = 1.0, edge_floor: float = 0.0,
           colour: bool = True) -> np.ndarray:
    """Refine ``flow`` (H, W, 2) from RGB uint8 ``image0`` to ``image1``."""
    i0 = np.ascontiguousarray(np.moveaxis(image0, -1, 0), dtype=np.float32)
    i1 = np.ascontiguousarray(np.moveaxis(image1, -1, 0), dtype=np.float32)
    weights = link_weights(i0 / np.float32(255.0), edge_a, edge_b, edge_floor)
    if not colour:
        luma = np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]
        i0 = (i0 * luma).sum(0, keepdims=True)
        i1 = (i1 * luma).sum(0, keepdims=True)
    u = np.ascontiguousarray(flow[..., 0], dtype=np.float32)
    v = np.ascontiguousarray(flow[..., 1], dtype=np.float32)
    for _ in range(warps):
        tensors = _linearise(i0, i1, u, v)
        du, dv = _solve(tensors, np.float32(0.5 * delta), np.float32(0.5 * gamma), weights, u, v,
                        np.float32(alpha), fixed_point, sor, np.float32(omega))
        u = u + du
        v = v + dv
    return np.stack([u, v], axis=-1)


@_jit
def _linearise(i0, i1, u, v):
    """Normalised motion tensors (12, H, W) of the data term linearised at the flow (u, v):
    brightness (0..5) and gradient constancy (6..11), each the sums over channels of
    a*a, a*b, b*b, a*c, b*c, c*c of the constraints a du + b dv + c, divided by
    a*a + b*b + zeta**2. Derivatives are central differences (no 1/2 factor) of the mean of
    ``i0`` and the warped ``i1`` (C, H, W), bilinear with clamped coordinates."""
    c, h, w = i0.shape
    A = np.empty((c, h + 4, w + 4), np.float32)
    Z = np.empty((c, h + 4, w + 4), np.float32)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    for y in range(h):
        for x in range(w):
            fx = min(max(np.float32(x) + u[y, x], zero), np.float32(w - 1))
            fy = min(max(np.float32(y) + v[y, x], zero), np.float32(h - 1))
            x0 = min(int(fx), w - 2)
            y0 = min(int(fy), h - 2)
            ax = fx - np.float32(x0)
            ay = fy - np.float32(y0)
            for k in range(c):
                top = i1[k, y0, x0] + ax * (i1[k, y0, x0 + 1] - i1[k, y0, x0])
                bot = i1[k, y0 + 1, x0] + ax * (i1[k, y0 + 1, x0 + 1] - i1[k, y0 + 1, x0])
                warped = top + ay * (bot - top)
                A[k, y + 2, x + 2] = half * (i0[k, y, x] + warped)
                Z[k, y + 2, x + 2] = warped - i0[k, y, x]
    for arr in (A, Z):
        for k in range(c):
            for y in range(2, h + 2):
                arr[k, y, 0] = arr[k, y, 1] = arr[k, y, 2]
                arr[k, y, w + 3] = arr[k, y, w + 2] = arr[k, y, w + 1]
            for x in range(w + 4):
                arr[k, 0, x] = arr[k, 1, x] = arr[k, 2, x]
                arr[k, h + 3, x] = arr[k, h + 2, x] = arr[k, h + 1, x]
    out = np.zeros((12, h, w), np.float32)
    zeta2 = np.float32(_ZETA2)
    one = np.float32(1.0)
    two = np.float32(2.0)
    for k in range(c):
        for y in range(h):
            py = y + 2
            a_m2, a_m1, a_0, a_p1, a_p2 = A[k, py - 2], A[k, py - 1], A[k, py], A[k, py + 1], \
                A[k, py + 2]
            z_m1, z_0, z_p1 = Z[k, py - 1], Z[k, py], Z[k, py + 1]
            for x in range(w):
                px = x + 2
                ix = a_0[px + 1] - a_0[px - 1]
                iy = a_p1[px] - a_m1[px]
                iz = z_0[px]
                ixz = z_0[px + 1] - z_0[px - 1]
                iyz = z_p1[px] - z_m1[px]
                ixx = a_0[px + 2] - two * a_0[px] + a_0[px - 2]
                iyy = a_p2[px] - two * a_0[px] + a_m2[px]
                ixy = a_p1[px + 1] - a_p1[px - 1] - a_m1[px + 1] + a_m1[px - 1]
                n = one / (ix * ix + iy * iy + zeta2)
                out[0, y, x] += n * ix * ix
                out[1, y, x] += n * ix * iy
                out[2, y, x] += n * iy * iy
                out[3, y, x] += n * ix * iz
                out[4, y, x] += n * iy * iz
                out[5, y, x] += n * iz * iz
                n1 = one / (ixx * ixx + ixy * ixy + zeta2)
                n2 = one / (iyy * iyy + ixy * ixy + zeta2)
                out[6, y, x] += n1 * ixx * ixx + n2 * ixy * ixy
                out[7, y, x] += n1 * ixx * ixy + n2 * ixy * iyy
                out[8, y, x] += n1 * ixy * ixy + n2 * iyy * iyy
                out[9, y, x] += n1 * ixx * ixz + n2 * ixy * iyz
                out[10, y, x] += n1 * ixy * ixz + n2 * iyy * iyz
                out[11, y, x] += n1 * ixz * ixz + n2 * iyz * iyz
    return out


@_jit
def _solve(t, half_delta, half_gamma, weights, u, v, alpha, fixed_point, sor, omega):
    """Increment (du, dv), each (H, W), of the flow: ``fixed_point`` lagged-weight iterations
    (Charbonnier penalisers of both data terms and of the flow gradient), each ``sor`` SOR
    sweeps. ``weights`` (2, H, W): edge-aware weights of the links right / down."""
    h, w = u.shape
    pdu = np.zeros((h + 2, w + 2), np.float32)       # padded; zero links outside the crop
    pdv = np.zeros((h + 2, w + 2), np.float32)
    sr = np.zeros((h + 2, w + 2), np.float32)        # link (y, x) -> (y, x + 1)
    sd = np.zeros((h + 2, w + 2), np.float32)        # link (y, x) -> (y + 1, x)
    pu = np.zeros((h + 2, w + 2), np.float32)        # padded flow
    pv = np.zeros((h + 2, w + 2), np.float32)
    pu[1:-1, 1:-1] = u
    pv[1:-1, 1:-1] = v
    a12 = np.empty((h, w), np.float32)
    b1 = np.empty((h, w), np.float32)
    b2 = np.empty((h, w), np.float32)
    inv1 = np.empty((h, w), np.float32)
    inv2 = np.empty((h, w), np.float32)
    half_alpha = np.float32(0.5) * alpha
    one_om = np.float32(1.0) - omega
    eps2 = np.float32(_EPS2)
    zeta2 = np.float32(_ZETA2)
    two = np.float32(2.0)
    for _ in range(fixed_point):
        for y in range(1, h + 1):
            yd = y + 1 if y < h else y
            for x in range(1, w + 1):
                xr = x + 1 if x < w else x
                p = pu[y, x] + pdu[y, x]
                q = pv[y, x] + pdv[y, x]
                ux = pu[y, xr] + pdu[y, xr] - p
                uy = pu[yd, x] + pdu[yd, x] - p
                vx = pv[y, xr] + pdv[y, xr] - q
                vy = pv[yd, x] + pdv[yd, x] - q
                ps = half_alpha / np.sqrt(ux * ux + uy * uy + vx * vx + vy * vy + eps2)
                sr[y, x] = ps * weights[0, y - 1, x - 1]
                sd[y, x] = ps * weights[1, y - 1, x - 1]
        for y in range(h):
            for x in range(w):
                p = pdu[y + 1, x + 1]
                q = pdv[y + 1, x + 1]
                eb = p * p * t[0, y, x] + two * p * q * t[1, y, x] + q * q * t[2, y, x] \
                    + two * p * t[3, y, x] + two * q * t[4, y, x] + t[5, y, x]
                eg = p * p * t[6, y, x] + two * p * q * t[7, y, x] + q * q * t[8, y, x] \
                    + two * p * t[9, y, x] + two * q * t[10, y, x] + t[11, y, x]
                wb = half_delta / np.sqrt(max(eb, np.float32(0.0)) + eps2)
                wg = half_gamma / np.sqrt(max(eg, np.float32(0.0)) + eps2)
                se = sr[y + 1, x + 1]
                sw = sr[y + 1, x]
                ss = sd[y + 1, x + 1]
                sn = sd[y, x + 1]
                uc = pu[y + 1, x + 1]
                vc = pv[y + 1, x + 1]
                total = se + sw + ss + sn
                # the fixed flow's part of the smoothness term goes into b
                a12[y, x] = wb * t[1, y, x] + wg * t[7, y, x]
                b1[y, x] = -wb * t[3, y, x] - wg * t[9, y, x] + se * pu[y + 1, x + 2] \
                    + sw * pu[y + 1, x] + ss * pu[y + 2, x + 1] + sn * pu[y, x + 1] - total * uc
                b2[y, x] = -wb * t[4, y, x] - wg * t[10, y, x] + se * pv[y + 1, x + 2] \
                    + sw * pv[y + 1, x] + ss * pv[y + 2, x + 1] + sn * pv[y, x + 1] - total * vc
                inv1[y, x] = omega / (wb * t[0, y, x] + wg * t[6, y, x] + zeta2 + total)
                inv2[y, x] = omega / (wb * t[2, y, x] + wg * t[8, y, x] + zeta2 + total)
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
                    nu = one_om * pdu[y + 1, x + 1] + inv1[y, x] * (
                        b1[y, x] - a12[y, x] * pdv[y + 1, x + 1] + nu)
                    pdu[y + 1, x + 1] = nu
                    pdv[y + 1, x + 1] = one_om * pdv[y + 1, x + 1] + inv2[y, x] * (
                        b2[y, x] - a12[y, x] * nu + nv)
    return pdu[1:-1, 1:-1].copy(), pdv[1:-1, 1:-1].copy()
