"""TV-L1 optical flow in PyTorch, batched over frame pairs, on any torch device.

The algorithm, parameters, units and conventions of :mod:`synthgen.steps.tvl1` (the vectorised
NumPy / OpenCV solver), step for step: grey levels (BT.601 luma of [0, 1] intensities), optional
area downscaling, a Gaussian pyramid built like ``cv2.pyrDown`` (5-tap binomial kernel, borders
reflected without repeating the edge pixel), coarse to fine with bilinear flow upsampling,
``num_warp`` warps per level (bilinear sampling of the second frame and its central-difference
gradient, edge pixels replicated) and ``num_iter`` thresholding / dual-projection iterations per
warp. There is no median filtering in either solver.

Differences from the NumPy solver: float32 rounding (the order of a few sums and of the
bilinear weights), measured on CPU at a mean of 5e-6 to 4e-5 px per pixel, all but ~0.04% of
pixels within 0.01 px (a few where the warped gradient nearly vanishes, up to 0.14 px;
``tests/steps/test_tvl1_torch.py``); and downscaling, whose area averaging equals ``cv2.INTER_AREA``
when the frame size is a multiple of ``downscale`` (224, 240 and 320 are, for the pipeline's
factors), while otherwise torch's adaptive average pooling gives each output pixel whole input
pixels.

Float32 only: the dual-projection and thresholding steps add increments of ~1e-3 px to flows of
tens of pixels, below float16's resolution there (0.016 px at 20 px), so half precision would
stall the iterations rather than speed them up.

On the CPU, run it on one torch thread per process (``synthgen.build.executor.single_threaded``, as a
build's shard tasks do) and parallelise over processes: its many small operations gain little
from torch's intra-op threads and lose much when cores are shared (20x slower on two threads of
a loaded 2-core machine).

Every operation is elementwise, a fixed-order sum of shifted slices, a gather or bilinear
interpolation's forward pass (no reductions, no atomics), so results do not depend on the batch
composition and repeat bit for bit on one device (tested on CPU; on CUDA where one is present).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from synthgen.steps.tvl1 import _LUMA, _MIN_SIZE, _TAU

#: Taps of ``cv2.pyrDown``'s separable Gaussian, 1/16 (1, 4, 6, 4, 1).
_PYR_TAPS = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def optical_flow_tvl1_torch(frames0, frames1, *, attachment: float = 15.0,
                            tightness: float = 0.3, num_warp: int = 5, num_iter: int = 10,
                            num_levels: int = 5, downscale: int = 1,
                            initial_motion: np.ndarray | None = None,
                            device: str | torch.device = "cpu") -> np.ndarray:
    """TV-L1 flow of B frame pairs on ``device``: a drop-in for
    :func:`synthgen.steps.tvl1.optical_flow_tvl1_batch` (same parameters, NumPy in and out).

    Parameters
    ----------
    frames0, frames1 : ndarray or Tensor, shape (B, H, W) or (B, H, W, 3)
        Grey or RGB frames, uint8 (0..255) or float (0..1); pair b is ``frames0[b]`` to
        ``frames1[b]``.
    attachment, tightness, num_warp, num_iter, num_levels, downscale
        As in :func:`synthgen.steps.tvl1.optical_flow_tvl1`.
    initial_motion : ndarray, shape (B, 2), optional
        Global displacement per pair the coarsest level starts from (input pixels, x then y).
    device : str or torch.device
        Where to compute (``"cpu"``, ``"cuda"``, ``"cuda:1"``).

    Returns
    -------
    flow : ndarray, shape (B, H, W, 2), float32
        Displacement in input pixels, x (columns) then y (rows), from ``frames0[b]`` to
        ``frames1[b]``.

    Raises
    ------
    ValueError
        If the two batches differ in shape, the layout is not one of the above, or a parameter
        is out of range.
    """
    device = torch.device(device)
    frames0, frames1 = (torch.as_tensor(np.asarray(f) if not torch.is_tensor(f) else f)
                        for f in (frames0, frames1))
    init = None if initial_motion is None else torch.as_tensor(
        np.asarray(initial_motion, dtype=np.float32))
    flow = tvl1_flow(frames0.to(device), frames1.to(device), attachment=attachment,
                     tightness=tightness, num_warp=num_warp, num_iter=num_iter,
                     num_levels=num_levels, downscale=downscale,
                     initial_motion=None if init is None else init.to(device))
    return flow.cpu().numpy()


@torch.inference_mode()
def tvl1_flow(frames0: torch.Tensor, frames1: torch.Tensor, *, attachment: float = 15.0,
              tightness: float = 0.3, num_warp: int = 5, num_iter: int = 10, num_levels: int = 5,
              downscale: int = 1, initial_motion: torch.Tensor | None = None) -> torch.Tensor:
    """TV-L1 flow of B frame pairs held as tensors; computed on their device.

    Parameters and conventions as :func:`optical_flow_tvl1_torch`, with tensors (``frames0``,
    ``frames1`` and ``initial_motion`` on one device).

    Returns
    -------
    flow : Tensor, shape (B, H, W, 2), float32, on the frames' device
        Displacement in input pixels, x then y.
    """
    if frames0.shape != frames1.shape:
        raise ValueError(f"frame batches differ in shape: {tuple(frames0.shape)} vs "
                         f"{tuple(frames1.shape)}")
    if frames0.ndim not in (3, 4) or (frames0.ndim == 4 and frames0.shape[-1] != 3):
        raise ValueError(f"frames must be (B, H, W) or (B, H, W, 3), got shape "
                         f"{tuple(frames0.shape)}")
    if min(num_warp, num_iter, num_levels, downscale) < 1:
        raise ValueError("num_warp, num_iter, num_levels and downscale must all be >= 1")
    if initial_motion is not None and tuple(initial_motion.shape) != (frames0.shape[0], 2):
        raise ValueError(f"initial_motion must be ({frames0.shape[0]}, 2), got "
                         f"{tuple(initial_motion.shape)}")
    height, width = frames0.shape[1:3]
    pyramid0 = _pyramid(_to_gray(frames0, downscale), num_levels)
    pyramid1 = _pyramid(_to_gray(frames1, downscale), num_levels)
    flow = torch.zeros((frames0.shape[0], 2) + tuple(pyramid0[0].shape[1:]),
                       dtype=torch.float32, device=frames0.device)
    if initial_motion is not None:
        coarse_per_input = torch.tensor([flow.shape[3] / width, flow.shape[2] / height],
                                        dtype=torch.float32, device=flow.device)
        flow += (initial_motion.float() * coarse_per_input)[:, :, None, None]
    for level, (image0, image1) in enumerate(zip(pyramid0, pyramid1)):
        if level:
            flow = _resize_flow(flow, tuple(image0.shape[1:]))
        flow = _tvl1_level(image0, image1, flow, attachment=attachment, tightness=tightness,
                           num_warp=num_warp, num_iter=num_iter)
    if tuple(flow.shape[2:]) != (height, width):
        flow = _resize_flow(flow, (height, width))
    return flow.permute(0, 2, 3, 1).contiguous()


def _to_gray(frames: torch.Tensor, downscale: int) -> torch.Tensor:
    """(B, H, W[, 3]) uint8/float -> (B, H', W') float32 in [0, 1], shrunk by ``downscale``."""
    gray = frames.float()
    if frames.dtype == torch.uint8:
        gray = gray * np.float32(1 / 255)
    if gray.ndim == 4:
        luma = [float(w) for w in _LUMA]
        gray = gray[..., 0] * luma[0] + gray[..., 1] * luma[1] + gray[..., 2] * luma[2]
    if downscale == 1:
        return gray.contiguous()
    size = (max(1, round(gray.shape[1] / downscale)), max(1, round(gray.shape[2] / downscale)))
    return F.adaptive_avg_pool2d(gray[:, None], size)[:, 0]


def _pyramid(gray: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Gaussian pyramid as ``cv2.pyrDown`` makes it, coarsest level first, finest = ``gray``."""
    levels = [gray]
    while len(levels) < num_levels and min(levels[-1].shape[1:]) >= 2 * _MIN_SIZE:
        levels.append(_pyr_down(levels[-1]))
    return levels[::-1]


def _pyr_down(gray: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, (H+1)//2, (W+1)//2): 5-tap binomial blur (reflect-101 borders), every
    second pixel, as ``cv2.pyrDown``."""
    padded = F.pad(gray[:, None], (2, 2, 2, 2), mode="reflect")[:, 0]
    height, width = gray.shape[1:]
    rows = sum(tap * padded[:, k:k + height] for k, tap in enumerate(_PYR_TAPS))
    blurred = sum(tap * rows[:, :, k:k + width] for k, tap in enumerate(_PYR_TAPS))
    return blurred[:, ::2, ::2].contiguous()


def _resize_flow(flow: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, 2, h, w) flow to (B, 2, *shape), values scaled to the new pixels
    (pixel centres aligned, as ``cv2.resize`` with ``INTER_LINEAR``)."""
    height, width = shape
    scale = torch.tensor([width / flow.shape[3], height / flow.shape[2]], dtype=torch.float32,
                         device=flow.device)
    out = F.interpolate(flow, size=shape, mode="bilinear", align_corners=False)
    return out * scale[None, :, None, None]


def _warp_with_gradient(image: torch.Tensor, flow: torch.Tensor,
                        grid: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Sample ``image`` (B, H, W) and its central-difference gradient at x + flow.

    ``grid`` holds the (1, H, W) x and y pixel coordinates. Returns (B, 3, H, W): warped image,
    d/dx, d/dy; bilinear, neighbours outside the frame replaced by the nearest edge pixel (as
    ``cv2.remap`` with ``BORDER_REPLICATE``; exact at whole-pixel positions).
    """
    gy, gx = torch.gradient(image, dim=(1, 2))      # central inside, one-sided at the edges
    num, height, width = image.shape
    stack = torch.stack((image, gx, gy), dim=1).view(num, 3, height * width)
    x, y = grid[0] + flow[:, 0], grid[1] + flow[:, 1]
    x0, y0 = torch.floor(x), torch.floor(y)
    wx, wy = (x - x0)[:, None], (y - y0)[:, None]
    cols = [c.long().clamp_(0, width - 1) for c in (x0, x0 + 1)]
    rows = [r.long().clamp_(0, height - 1) * width for r in (y0, y0 + 1)]

    def at(row, col):
        index = (row + col).view(num, 1, height * width).expand(num, 3, height * width)
        return torch.gather(stack, 2, index).view(num, 3, height, width)

    top = at(rows[0], cols[0]) * (1 - wx) + at(rows[0], cols[1]) * wx
    bottom = at(rows[1], cols[0]) * (1 - wx) + at(rows[1], cols[1]) * wx
    return top * (1 - wy) + bottom * wy


def _tvl1_level(image0: torch.Tensor, image1: torch.Tensor, flow: torch.Tensor, *,
                attachment: float, tightness: float, num_warp: int, num_iter: int
                ) -> torch.Tensor:
    """Refine (B, 2, H, W) ``flow`` from ``image0`` to ``image1`` (B, H, W) at one pyramid level.

    The NumPy solver's steps, in place on preallocated buffers, with fused multiply-adds
    (``addcmul``, ``alpha=``): 38 kernels per iteration instead of 51, which matters on a GPU,
    where small batches are bound by kernel launches."""
    height, width = image0.shape[1:]
    grid = (torch.arange(width, dtype=torch.float32, device=image0.device).view(1, 1, width),
            torch.arange(height, dtype=torch.float32, device=image0.device).view(1, height, 1))
    lt = float(np.float32(attachment * tightness))
    theta = float(np.float32(tightness))
    step = float(np.float32(_TAU / tightness))
    flow = flow.clone()
    u = [flow[:, 0], flow[:, 1]]                      # views: updating u updates flow
    p = [[torch.zeros_like(image0) for _ in range(2)] for _ in range(2)]
    rho, coef, tmp, norm = (torch.empty_like(image0) for _ in range(4))
    dx = torch.zeros_like(image0)                     # last column stays 0 (Neumann boundary)
    dy = torch.zeros_like(image0)                     # last row stays 0
    for _ in range(num_warp):
        warped = _warp_with_gradient(image1, flow, grid)
        gx, gy = warped[:, 1], warped[:, 2]           # dI1/dx, dI1/dy at x + u
        neg_inv_norm2 = -1.0 / torch.clamp(gx * gx + gy * gy, min=1e-9)
        rho_c = warped[:, 0] - image0 - gx * u[0] - gy * u[1]
        for _ in range(num_iter):
            # Data step: v = u + c * grad with c = clip(-rho / |grad|^2, -lt, lt).
            torch.addcmul(rho_c, gx, u[0], out=rho)
            rho.addcmul_(gy, u[1])
            torch.mul(rho, neg_inv_norm2, out=coef)
            coef.clamp_(-lt, lt)
            for c, g in ((0, gx), (1, gy)):
                # TV step: u = v + theta * div(p).
                px, py = p[c]
                u[c].addcmul_(coef, g)
                tmp.copy_(px)
                tmp[..., 1:] -= px[..., :-1]
                tmp += py
                tmp[..., 1:, :] -= py[..., :-1, :]
                u[c].add_(tmp, alpha=theta)
            for c in range(2):
                # p <- (p + tau/theta grad u) / (1 + tau/theta |grad u|), forward differences.
                px, py = p[c]
                torch.sub(u[c][..., 1:], u[c][..., :-1], out=dx[..., :-1])
                torch.sub(u[c][..., 1:, :], u[c][..., :-1, :], out=dy[..., :-1, :])
                torch.mul(dx, dx, out=norm)
                norm.addcmul_(dy, dy).sqrt_().mul_(step).add_(1)
                px.add_(dx, alpha=step).div_(norm)
                py.add_(dy, alpha=step).div_(norm)
    return flow
