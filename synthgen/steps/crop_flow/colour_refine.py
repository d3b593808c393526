"""Full-resolution variational refinement of a crop flow on colour, with edge-aware smoothness.

The energy of ``cv2.VariationalRefinement`` (Brox et al. 2004 as in DIS, Kroeger et al. 2016):
brightness and gradient constancy, each normalised by its spatial gradient (Zimmer et al. 2011)
under a Charbonnier penaliser, plus a Charbonnier penaliser of the flow gradient; but

* the data terms sum over the three RGB channels (inside one penaliser each), so a limb that
  differs from the background in colour more than in grey level still drives the flow;
* the smoothness link between neighbouring pixels is weighted by ``exp(-edge * d)``, d the
  Euclidean RGB difference of the two pixels of the first crop (0..1 units): the flow is smooth
  within a limb and the background but not across their boundary (an image-driven weight as in
  Werlberger et al. 2009);
* the second crop is re-warped by the current flow ``warps`` times (the data term re-linearised),
  each with ``fixed_point_iterations`` lagged-weight iterations of ``sor_iterations``
  Gauss-Seidel sweeps with over-relaxation ``omega``.

Images in 0..255 per channel; derivatives are central differences (no 1/2 factor, edge values
repeated) of the mean of the first crop and the warped second crop (bilinear, coordinates
clamped to the crop). Compiled with numba (``cache=True``), single-threaded and without fastmath:
bit-identical for the same inputs, whatever the thread count.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")
#: Squared epsilon of the Charbonnier penalisers and squared zeta of the data-term
#: normalisation: ``cv2.VariationalRefinement``'s (epsilon 0.001, zeta 0.1).
_EPS2, _ZETA2 = 1e-6, 0.01


def refine_colour(image0: np.ndarray, image1: np.ndarray, flow: np.ndarray, *, warps: int,
                  fixed_point_iterations: int, sor_iterations: int, omega: float, alpha: float,
                  gamma: float, delta: float, edge: float) -> np.ndarray:
    """Refine ``flow`` from ``image0`` to ``image1`` at full resolution.

    Parameters
    ----------
    image0, image1 : ndarray, shape (H, W, 3), uint8
        RGB crops.
    flow : ndarray, shape (H, W, 2)
        Initial flow in crop pixels, x then y (DIS's).
    warps, fixed_point_iterations, sor_iterations : int
        Re-warps of ``image1``; lagged-weight iterations per warp; SOR sweeps per iteration.
    omega : float
        Over-relaxation of the SOR sweeps (0 < omega < 2).
    alpha, gamma, delta : float
        Weights of smoothness, gradient constancy and brightness constancy.
    edge : float
        Edge-awareness a of the smoothness link weight ``exp(-a * d)``, d the RGB distance
        (0..1 units) of the two pixels (0: uniform weights).

    Returns
    -------
    ndarray, shape (H, W, 2), float32
        Refined flow in crop pixels, x then y.
    """
    i0 = np.ascontiguousarray(np.moveaxis(image0, -1, 0), dtype=np.float32)
    i1 = np.ascontiguousarray(np.moveaxis(image1, -1, 0), dtype=np.float32)
    links = _link_weights(i0, np.float32(edge / 255.0))
    u = np.ascontiguousarray(flow[..., 0], dtype=np.float32)
    v = np.ascontiguousarray(flow[..., 1], dtype=np.float32)
    for _ in range(warps):
        tensors = _linearise(i0, i1, u, v)
        du, dv = _solve(tensors, np.float32(delta / 2), np.float32(gamma / 2), links, u, v,
                        np.float32(alpha), fixed_point_iterations, sor_iterations,
                        np.float32(omega))
        u = u + du
        v = v + dv
    return np.stack([u, v], axis=-1)


@_jit
def _link_weights(image, edge):
    """(2, H, W) weight ``exp(-edge * d)`` of the link from each pixel to its right (0) and lower
    (1) neighbour, d the Euclidean distance of their values in ``image`` (C, H, W); 0 on links
    leaving the image."""
    c, h, w = image.shape
    out = np.zeros((2, h, w), np.float32)
    for axis in range(2):
        for y in range(h - axis):
            d = np.zeros(w, np.float32)
            for k in range(c):
                for x in range(w - 1 + axis):
                    t = image[k, y + axis, x + 1 - axis] - image[k, y, x]
                    d[x] += t * t
            for x in range(w - 1 + axis):
                out[axis, y, x] = np.exp(-edge * np.sqrt(d[x]))
    return out


@_jit
def _linearise(i0, i1, u, v):
    """Normalised motion tensors (12, H, W) of the data terms linearised at the flow (u, v):
    brightness (0..5) and gradient constancy (6..11), each the sums over channels of a*a, a*b,
    b*b, a*c, b*c, c*c of a constraint a du + b dv + c divided by a*a + b*b + zeta**2."""
    c, h, w = i0.shape
    mean = np.empty((c, h + 4, w + 4), np.float32)       # edge-padded by 2 px
    diff = np.empty((c, h + 4, w + 4), np.float32)
    half, zero = np.float32(0.5), np.float32(0.0)
    for y in range(h):
        for x in range(w):
            fx = min(max(np.float32(x) + u[y, x], zero), np.float32(w - 1))
            fy = min(max(np.float32(y) + v[y, x], zero), np.float32(h - 1))
            x0, y0 = min(int(fx), w - 2), min(int(fy), h - 2)
            ax, ay = fx - np.float32(x0), fy - np.float32(y0)
            for k in range(c):
                top = i1[k, y0, x0] + ax * (i1[k, y0, x0 + 1] - i1[k, y0, x0])
                bottom = i1[k, y0 + 1, x0] + ax * (i1[k, y0 + 1, x0 + 1] - i1[k, y0 + 1, x0])
                warped = top + ay * (bottom - top)
                mean[k, y + 2, x + 2] = half * (i0[k, y, x] + warped)
                diff[k, y + 2, x + 2] = warped - i0[k, y, x]
    for padded in (mean, diff):
        for k in range(c):
            for y in range(2, h + 2):
                padded[k, y, 0] = padded[k, y, 1] = padded[k, y, 2]
                padded[k, y, w + 3] = padded[k, y, w + 2] = padded[k, y, w + 1]
            for x in range(w + 4):
                padded[k, 0, x] = padded[k, 1, x] = padded[k, 2, x]
                padded[k, h + 3, x] = padded[k, h + 2, x] = padded[k, h + 1, x]
    out = np.zeros((12, h, w), np.float32)
    zeta2, one, two = np.float32(_ZETA2), np.float32(1.0), np.float32(2.0)
    for k in range(c):
        for y in range(h):
            a_m2, a_m1, a_0 = mean[k, y], mean[k, y + 1], mean[k, y + 2]
            a_p1, a_p2 = mean[k, y + 3], mean[k, y + 4]
            z_m1, z_0, z_p1 = diff[k, y + 1], diff[k, y + 2], diff[k, y + 3]
            for x in range(w):
                p = x + 2
                ix = a_0[p + 1] - a_0[p - 1]
                iy = a_p1[p] - a_m1[p]
                iz = z_0[p]
                ixz = z_0[p + 1] - z_0[p - 1]
                iyz = z_p1[p] - z_m1[p]
                ixx = a_0[p + 2] - two * a_0[p] + a_0[p - 2]
                iyy = a_p2[p] - two * a_0[p] + a_m2[p]
                ixy = a_p1[p + 1] - a_p1[p - 1] - a_m1[p + 1] + a_m1[p - 1]
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
def _solve(t, half_delta, half_gamma, links, u, v, alpha, fixed_point, sor, omega):
    """Increment (du, dv), each (H, W), of the flow (u, v) for the motion tensors ``t``:
    ``fixed_point`` lagged-weight iterations of ``sor`` SOR sweeps each. ``links`` (2, H, W):
    edge-aware weights of the smoothness links right and down."""
    h, w = u.shape
    # Padded by one pixel: the links leaving the crop weigh 0, so the sweeps need no branches.
    pdu = np.zeros((h + 2, w + 2), np.float32)
    pdv = np.zeros((h + 2, w + 2), np.float32)
    pu = np.zeros((h + 2, w + 2), np.float32)
    pv = np.zeros((h + 2, w + 2), np.float32)
    pu[1:-1, 1:-1] = u
    pv[1:-1, 1:-1] = v
    sr = np.zeros((h + 2, w + 2), np.float32)        # link (y, x) -> (y, x + 1)
    sd = np.zeros((h + 2, w + 2), np.float32)        # link (y, x) -> (y + 1, x)
    a12 = np.empty((h, w), np.float32)
    b1 = np.empty((h, w), np.float32)
    b2 = np.empty((h, w), np.float32)
    inv1 = np.empty((h, w), np.float32)
    inv2 = np.empty((h, w), np.float32)
    half_alpha, one_om = np.float32(0.5) * alpha, np.float32(1.0) - omega
    eps2, zeta2, two, zero = np.float32(_EPS2), np.float32(_ZETA2), np.float32(2.0), np.float32(0.0)
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
                smooth = half_alpha / np.sqrt(ux * ux + uy * uy + vx * vx + vy * vy + eps2)
                sr[y, x] = smooth * links[0, y - 1, x - 1]
                sd[y, x] = smooth * links[1, y - 1, x - 1]
        for y in range(h):
            for x in range(w):
                p = pdu[y + 1, x + 1]
                q = pdv[y + 1, x + 1]
                eb = p * p * t[0, y, x] + two * p * q * t[1, y, x] + q * q * t[2, y, x] \
                    + two * p * t[3, y, x] + two * q * t[4, y, x] + t[5, y, x]
                eg = p * p * t[6, y, x] + two * p * q * t[7, y, x] + q * q * t[8, y, x] \
                    + two * p * t[9, y, x] + two * q * t[10, y, x] + t[11, y, x]
                wb = half_delta / np.sqrt(max(eb, zero) + eps2)
                wg = half_gamma / np.sqrt(max(eg, zero) + eps2)
                se, sw = sr[y + 1, x + 1], sr[y + 1, x]
                ss, sn = sd[y + 1, x + 1], sd[y, x + 1]
                total = se + sw + ss + sn
                # The smoothness term's part from the fixed flow (u, v) goes into b.
                a12[y, x] = wb * t[1, y, x] + wg * t[7, y, x]
                b1[y, x] = -wb * t[3, y, x] - wg * t[9, y, x] + se * pu[y + 1, x + 2] \
                    + sw * pu[y + 1, x] + ss * pu[y + 2, x + 1] + sn * pu[y, x + 1] \
                    - total * pu[y + 1, x + 1]
                b2[y, x] = -wb * t[4, y, x] - wg * t[10, y, x] + se * pv[y + 1, x + 2] \
                    + sw * pv[y + 1, x] + ss * pv[y + 2, x + 1] + sn * pv[y, x + 1] \
                    - total * pv[y + 1, x + 1]
                inv1[y, x] = omega / (wb * t[0, y, x] + wg * t[6, y, x] + zeta2 + total)
                inv2[y, x] = omega / (wb * t[2, y, x] + wg * t[8, y, x] + zeta2 + total)
        for _ in range(sor):
            for y in range(h):
                for x in range(w):
                    se, sw = sr[y + 1, x + 1], sr[y + 1, x]
                    ss, sn = sd[y + 1, x + 1], sd[y, x + 1]
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
