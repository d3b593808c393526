"""The classical default: OpenCV's DIS flow with variational refinement on the crops.

DIS (Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse Search") matches patches
coarse to fine by inverse-compositional search, densifies them, and refines each level with a
variational energy (brightness and gradient constancy, smoothness). DIS stops at its finest
matched level (half resolution by default) and upsamples; the same variational refinement then
runs once more on the full-resolution crops (``cv2.VariationalRefinement``), which sharpens the
flow of thin, fast parts (forearms, shins). On grey levels.

Option (``colour_warps`` > 0, not the default): that full-resolution pass replaced by the compiled
refinement on colour with edge-aware smoothness and re-warping
(:func:`synthgen.steps.crop_flow.colour_refine.refine_colour`).
"""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from synthgen.config import CropFlowConfig
from synthgen.steps.crop_flow.base import FlowBackend
from synthgen.steps.crop_flow.colour_refine import refine_colour

_DEFAULT = CropFlowConfig()
#: Inner SOR iterations and relaxation of the full-resolution refinement: OpenCV's defaults of
#: ``cv2.VariationalRefinement``, fixed here so that the flow does not follow a library change.
_SOR_ITERATIONS, _SOR_OMEGA = 5, 1.6


class DISBackend(FlowBackend):
    """DIS optical flow (``cv2.DISOpticalFlow``) on the grey levels of each RGB crop pair (the
    optional colour full-resolution pass on its RGB).

    Parameters
    ----------
    finest_scale : int
        Finest pyramid level matched (0: full resolution; 1: half, refined up by the variational
        step at each finer level).
    patch_size, patch_stride : int
        Patch side and spacing in pixels at each level.
    gradient_descent_iterations : int
        Inverse-search iterations per patch.
    refinement_iterations : int
        Variational refinement iterations per level (0: none).
    refinement_alpha, refinement_gamma, refinement_delta : float
        Weights of smoothness, gradient constancy and brightness constancy of the refinement
        (at every level, the full-resolution one included).
    full_resolution_iterations : int
        Fixed-point iterations of the variational refinement on the full-resolution crops after
        DIS (5 inner SOR iterations each; 0: none, plain DIS).
    colour_warps : int
        0 (default): the full-resolution pass is OpenCV's, on grey levels. n > 0: it is instead
        ``refine_colour`` (RGB data terms with ``refinement_gamma`` and ``refinement_delta``,
        edge-aware smoothness) with n warps; needs ``full_resolution_iterations=0``.
    colour_fixed_point_iterations, colour_sor_iterations : int
        Lagged-weight iterations per warp and SOR sweeps per iteration of ``refine_colour``.
    colour_omega : float
        Its SOR over-relaxation (0 < omega < 2).
    colour_alpha, colour_edge : float
        Its smoothness weight and edge-awareness (``exp(-colour_edge * d)`` per link, d the RGB
        distance of the two pixels in 0..1 units).

    Mean normalisation and spatial propagation are on (OpenCV's presets). Defaults are
    ``synthgen.config.CropFlowConfig``'s ``dis_*`` (chosen in ``benchmarks/bench_crop_flow.py``).
    The flow of each pair does not depend on the batch or on OpenCV's thread count.
    """

    name = "dis"

    def __init__(self, *, finest_scale: int = _DEFAULT.dis_finest_scale,
                 patch_size: int = _DEFAULT.dis_patch_size,
                 patch_stride: int = _DEFAULT.dis_patch_stride,
                 gradient_descent_iterations: int = _DEFAULT.dis_gradient_descent_iterations,
                 refinement_iterations: int = _DEFAULT.dis_refinement_iterations,
                 refinement_alpha: float = _DEFAULT.dis_refinement_alpha,
                 refinement_gamma: float = _DEFAULT.dis_refinement_gamma,
                 refinement_delta: float = _DEFAULT.dis_refinement_delta,
                 full_resolution_iterations: int = _DEFAULT.dis_full_resolution_iterations,
                 colour_warps: int = _DEFAULT.dis_colour_warps,
                 colour_fixed_point_iterations: int = _DEFAULT.dis_colour_fixed_point_iterations,
                 colour_sor_iterations: int = _DEFAULT.dis_colour_sor_iterations,
                 colour_omega: float = _DEFAULT.dis_colour_omega,
                 colour_alpha: float = _DEFAULT.dis_colour_alpha,
                 colour_edge: float = _DEFAULT.dis_colour_edge):
        if min(patch_size, patch_stride, gradient_descent_iterations) < 1 or finest_scale < 0 \
                or min(refinement_iterations, full_resolution_iterations) < 0 \
                or patch_stride > patch_size:
            raise ValueError("DIS needs patch_size >= patch_stride >= 1, "
                             "gradient_descent_iterations >= 1, finest_scale >= 0, "
                             "refinement_iterations >= 0 and full_resolution_iterations >= 0")
        if colour_warps and full_resolution_iterations:
            raise ValueError("DIS: colour_warps > 0 replaces the grey full-resolution pass; set "
                             "full_resolution_iterations to 0 to use it")
        if colour_warps < 0 or min(colour_fixed_point_iterations, colour_sor_iterations) < 1 \
                or not 0 < colour_omega < 2 or min(colour_alpha, colour_edge) < 0:
            raise ValueError("DIS colour refinement needs colour_warps >= 0, "
                             "colour_fixed_point_iterations >= 1, colour_sor_iterations >= 1, "
                             "0 < colour_omega < 2, colour_alpha >= 0 and colour_edge >= 0")
        self._params = dict(finest_scale=int(finest_scale), patch_size=int(patch_size),
                            patch_stride=int(patch_stride),
                            gradient_descent_iterations=int(gradient_descent_iterations),
                            refinement_iterations=int(refinement_iterations),
                            refinement_alpha=float(refinement_alpha),
                            refinement_gamma=float(refinement_gamma),
                            refinement_delta=float(refinement_delta),
                            full_resolution_iterations=int(full_resolution_iterations),
                            colour_warps=int(colour_warps),
                            colour_fixed_point_iterations=int(colour_fixed_point_iterations),
                            colour_sor_iterations=int(colour_sor_iterations),
                            colour_omega=float(colour_omega), colour_alpha=float(colour_alpha),
                            colour_edge=float(colour_edge))
        p = self._params
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(p["finest_scale"])
        dis.setPatchSize(p["patch_size"])
        dis.setPatchStride(p["patch_stride"])
        dis.setGradientDescentIterations(p["gradient_descent_iterations"])
        dis.setVariationalRefinementIterations(p["refinement_iterations"])
        dis.setVariationalRefinementAlpha(p["refinement_alpha"])
        dis.setVariationalRefinementGamma(p["refinement_gamma"])
        dis.setVariationalRefinementDelta(p["refinement_delta"])
        self._dis = dis
        self._refine = None
        if p["full_resolution_iterations"]:
            refine = cv2.VariationalRefinement_create()
            refine.setFixedPointIterations(p["full_resolution_iterations"])
            refine.setSorIterations(_SOR_ITERATIONS)
            refine.setOmega(_SOR_OMEGA)
            refine.setAlpha(p["refinement_alpha"])
            refine.setGamma(p["refinement_gamma"])
            refine.setDelta(p["refinement_delta"])
            self._refine = refine
        self._colour = None
        if p["colour_warps"]:
            self._colour = partial(
                refine_colour, warps=p["colour_warps"],
                fixed_point_iterations=p["colour_fixed_point_iterations"],
                sor_iterations=p["colour_sor_iterations"], omega=p["colour_omega"],
                alpha=p["colour_alpha"], gamma=p["refinement_gamma"],
                delta=p["refinement_delta"], edge=p["colour_edge"])

    @property
    def params(self) -> dict:
        # The colour pass's settings only when it runs: a store of the grey default keeps the
        # identity it had before the option existed.
        return {k: v for k, v in self._params.items()
                if self._params["colour_warps"] or not k.startswith("colour_")}

    def __reduce__(self):
        # OpenCV's solver does not pickle: a copy is a new backend of the same parameters.
        return partial(DISBackend, **self._params), ()

    def _flow(self, pairs: np.ndarray) -> np.ndarray:
        out = np.empty(pairs.shape[:1] + pairs.shape[2:4] + (2,), dtype=np.float32)
        for b, (first, second) in enumerate(pairs):
            grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (first, second)]
            flow = self._dis.calc(*grey, None)
            if self._refine is not None:
                flow = self._refine.calc(*grey, flow)
            if self._colour is not None:
                flow = self._colour(first, second, flow)
            out[b] = flow
        return out
