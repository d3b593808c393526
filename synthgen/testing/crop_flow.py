"""The suite every crop-flow backend must pass (in the style of zarr's shared store tests).

Subclass :class:`CropFlowBackendSuite` in a test module and give it a ``backend`` fixture::

    class TestDIS(CropFlowBackendSuite):
        @pytest.fixture(scope="class")
        @classmethod
        def backend(cls):
            return get_backend("dis")

A backend that cannot be expected to follow motion (FlowNet with random weights) sets
``recovers_motion = False``; every other check applies to every backend.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from synthgen.steps.crop_flow import BACKENDS, FlowBackend
from synthgen.testing.flow_pairs import end_point_error

#: Crop side of the suite's pairs, pixels (small: the suite runs for every backend).
SIZE = 96
#: The suite's known translation, crop pixels (x, y).
SHIFT = (2.0, -1.0)


def _photo() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def shifted_pairs(count: int = 2, *, shift=SHIFT, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Crop pairs of a photo whose second crop shows the first's content moved by ``shift``.

    Returns
    -------
    pairs : ndarray, shape (count, 2, size, size, 3), uint8
    flow : ndarray, shape (count, size, size, 2), float32
        The true flow, crop pixels, x then y (``shift`` everywhere; integer shifts only).
    """
    photo = _photo()
    dx, dy = (int(v) for v in shift)
    rng = np.random.default_rng(0)
    pairs = np.empty((count, 2, size, size, 3), dtype=np.uint8)
    for b in range(count):
        y = int(rng.integers(8, photo.shape[0] - size - 8))
        x = int(rng.integers(8, photo.shape[1] - size - 8))
        pairs[b, 0] = photo[y:y + size, x:x + size]
        pairs[b, 1] = photo[y - dy:y - dy + size, x - dx:x - dx + size]
    return pairs, np.broadcast_to(np.float32(shift), (count, size, size, 2)).copy()


class CropFlowBackendSuite:
    """The contract of :class:`synthgen.steps.crop_flow.FlowBackend`: shape, dtype and units;
    a known translation recovered; determinism; batches that do not mix; bad input refused;
    a recordable identity; a pickle round trip (the backend object travels to workers)."""

    #: False for a backend whose flow need not follow the image (random weights).
    recovers_motion = True
    #: Largest mean end-point error on the known translation (12 px border left out), crop pixels.
    max_epe = 0.5

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> FlowBackend:
        raise NotImplementedError("a suite subclass gives the backend under test")

    @pytest.fixture(scope="class")
    @classmethod
    def pairs(cls):
        return shifted_pairs()

    def test_flow_is_float32_crop_pixels_of_the_pairs_shape(self, backend, pairs):
        flow = backend.flow(pairs[0])
        assert flow.shape == (2, SIZE, SIZE, 2) and flow.dtype == np.float32
        assert flow.flags.c_contiguous and np.isfinite(flow).all()

    def test_known_translation_is_recovered_x_then_y(self, backend, pairs):
        if not self.recovers_motion:
            pytest.skip(f"{backend!r} is not expected to follow motion (random weights)")
        flow = backend.flow(pairs[0])
        assert end_point_error(flow, pairs[1], margin=12) < self.max_epe
        np.testing.assert_allclose(np.median(flow[:, 12:-12, 12:-12], axis=(0, 1, 2)), SHIFT,
                                   atol=self.max_epe)

    def test_same_pairs_give_the_same_bytes(self, backend, pairs):
        assert backend.flow(pairs[0]).tobytes() == backend.flow(pairs[0]).tobytes()

    def test_batches_do_not_mix(self, backend, pairs):
        together = backend.flow(pairs[0])
        alone = np.concatenate([backend.flow(pairs[0][i:i + 1]) for i in range(len(pairs[0]))])
        np.testing.assert_allclose(together, alone, atol=1e-3)

    def test_other_sizes_and_empty_batches(self, backend, pairs):
        small = np.ascontiguousarray(pairs[0][:1, :, :64, :48])
        assert backend.flow(small).shape == (1, 64, 48, 2)
        assert backend.flow(np.zeros((0, 2, SIZE, SIZE, 3), np.uint8)).shape == (0, SIZE, SIZE, 2)

    @pytest.mark.parametrize("shape, dtype, match", [
        ((2, SIZE, SIZE, 3), np.uint8, "shape"),
        ((1, 3, SIZE, SIZE, 3), np.uint8, "shape"),
        ((1, 2, SIZE, SIZE, 4), np.uint8, "shape"),
        ((1, 2, SIZE, SIZE, 3), np.float32, "uint8"),
    ])
    def test_bad_input_is_refused(self, backend, shape, dtype, match):
        with pytest.raises(ValueError, match=match):
            backend.flow(np.zeros(shape, dtype))

    def test_name_and_params_are_a_json_identity(self, backend):
        assert backend.name in BACKENDS
        json.dumps({"backend": backend.name, "params": backend.params})
        assert repr(backend).startswith(type(backend).__name__ + "(")

    def test_pickle_round_trip_keeps_identity_and_flow(self, backend, pairs):
        copy = pickle.loads(pickle.dumps(backend))
        assert type(copy) is type(backend)
        assert (copy.name, copy.params) == (backend.name, backend.params)
        assert copy.flow(pairs[0]).tobytes() == backend.flow(pairs[0]).tobytes()
