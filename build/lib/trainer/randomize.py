"""Training-time domain randomisation of keypoint visibility (method.md step 8, appendix B).

3DPW's keypoint detector reports legs even when they are occluded, and misses or invents
keypoints now and then. So, fresh at every draw: unhide all leg keypoints of a clip with
probability ``leg_unhide_probability`` (0.5), then flip each keypoint's hidden state with
probability ``flip_probability`` (0.05).

*Decision:* the leg unhiding is drawn once per clip (all frames of the clip together), as a
detector's habit is a property of the video, not of one frame; the flips are drawn per frame and
keypoint. The leg keypoints are hips, knees and ankles.
"""

from __future__ import annotations

import torch


def randomize_visibility(hidden: torch.Tensor, leg: torch.Tensor, *, generator: torch.Generator,
                         leg_unhide_probability: float = 0.5,
                         flip_probability: float = 0.05) -> torch.Tensor:
    """Randomised hidden states of keypoints.

    Parameters
    ----------
    hidden : Tensor, shape (B, T, K), bool
        True where keypoint k of frame t of clip b is hidden (any reason of the store's bitmask).
    leg : Tensor, shape (K,), bool
        True for the leg keypoints (hips, knees, ankles).
    generator : torch.Generator
        On ``hidden``'s device; the only source of randomness.
    leg_unhide_probability, flip_probability : float
        See the module docstring.

    Returns
    -------
    Tensor, shape (B, T, K), bool
        The randomised hidden states (a new tensor).
    """
    batch, frames, count = hidden.shape
    device = hidden.device
    unhide = torch.rand((batch, 1, 1), generator=generator, device=device) < leg_unhide_probability
    hidden = hidden & ~(unhide & leg.to(device))
    flip = torch.rand((batch, frames, count), generator=generator, device=device) < flip_probability
    return hidden ^ flip
