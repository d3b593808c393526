"""From stores to device batches: the trainer's data path.

Reads synthgen stores only through their public reader (:class:`synthgen.store.StoreReader`):
finished shards only, one example per Zarr chunk, whole examples (one byte-range read per array,
checksums checked: damage raises :class:`synthgen.store.StoreDamageError` naming store, array and
shard). Worker processes of a ``torch.utils.data.DataLoader`` decompress chunks (each worker
opens the stores lazily, on its first item) straight into batch buffers that are reused from
batch to batch (:class:`BatchSlots`: new memory per batch cost as much as the decompression);
training epochs visit the examples shard by shard (:class:`ClipBatchSampler`), so a worker's reads
stay within a few shard files; batches travel in pinned memory and are copied to the device
without blocking. Everything that turns stored arrays into network inputs runs on the device,
batched, in torch: flow scaling and magnitude, keypoint heatmaps (:mod:`trainer.heatmaps`), the
visibility randomisation (:mod:`trainer.randomize`), the total-occlusion channel, resizing. CPU
works too.

Pairs and frames: a training clip is a window of T = ``clip_length`` frames of a stored example;
pair t (t < T - 1) holds frames t and t + 1 both cropped with box t. The input of pair t is built
from pair t: flow t, RGB of frame t, heatmaps of the keypoints of frame t (crop t), and frame t's
total-occlusion flag. Its targets are frames t (``current`` head) and t + 1 (``future`` head),
the latter's 2D keypoints expressed in box t.

Normalised crop coordinates (the 2D targets): ``(px + 0.5) * 2 / crop_size - 1`` for crop pixels
``px`` whose pixel centres sit at integers: -1 at the left/top edge, +1 at the right/bottom edge.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import uuid
import weakref
import zlib
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from synthgen import store as synthstore
from synthgen.core.joints import HEATMAP_KEYPOINTS, LEG_JOINTS
from trainer.config import MODALITIES, DataConfig
from trainer.heatmaps import render_heatmaps
from trainer.losses import pair_frames
from trainer.randomize import randomize_visibility

#: Channels of each input part.
PART_CHANNELS = {"rgb": 3, "flow": 3, "keypoints": len(HEATMAP_KEYPOINTS)}
#: ImageNet statistics of torchvision's ResNet-50 weights (RGB in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Arrays every batch carries (targets and visibility), per frame.
TARGET_ARRAYS = ("joints3d", "joints2d", "joints2d_crop", "boxes", "visibility", "total_occlusion")


def input_channels(modality: str) -> int:
    """Channels per pair of a modality: its parts plus the total-occlusion indicator."""
    return sum(PART_CHANNELS[part] for part in MODALITIES[modality]) + 1


def channel_layout(modality: str) -> dict[str, slice]:
    """Where each part sits in the channel axis of :func:`make_inputs` output.

    Returns
    -------
    dict of str to slice
        Parts of ``MODALITIES[modality]`` in order, then ``"total_occlusion"`` (last channel).
    """
    layout, start = {}, 0
    for part in MODALITIES[modality]:
        layout[part] = slice(start, start + PART_CHANNELS[part])
        start += PART_CHANNELS[part]
    layout["total_occlusion"] = slice(start, start + 1)
    return layout


# ----------------------------------------------------------------------------------------------
# Stores


@dataclass(frozen=True)
class StoreInfo:
    """What the trainer needs to know about one store.

    Attributes
    ----------
    url : str
    num_frames, crop_size : int
        Frames per example and crop side in pixels.
    crop_flow : dict or None
        The crop-flow backend the store was made with (``attrs["crop_flow"]``, else the config's
        ``crop_flow`` section), None when it records none.
    examples : ndarray, shape (N,), int64
        Indices of the examples of finished shards.
    persons : ndarray, shape (N,), str
        Identity of each example's SURREAL clip: the last :data:`PERSON_PATH_PARTS` components of
        its path in ``attrs["sources"]["surreal"]`` when recorded (``runN/<seq>/<seq>_cNNNN.mp4``:
        the same string in every store built from that clip, wherever the dataset lives, so the
        validation split does not move with the data), else ``"<url>#<index>"``.
    examples_per_shard : int
        Consecutive examples per shard file.
    """

    url: str
    num_frames: int
    crop_size: int
    crop_flow: dict | None
    examples: np.ndarray
    persons: np.ndarray
    examples_per_shard: int = 1


#: Path components that name a SURREAL clip independently of the dataset's location.
PERSON_PATH_PARTS = 3


def _person_names(attrs: dict, url: str, indices: np.ndarray) -> np.ndarray:
    sources = attrs.get("sources", {})
    table = sources.get("surreal") if isinstance(sources, dict) else None
    names = []
    for index in indices.tolist():
        if table is not None and 0 <= index < len(table):
            entry = table[index]
            if isinstance(entry, dict) and "path" in entry:
                entry = "/".join(PurePath(entry["path"]).parts[-PERSON_PATH_PARTS:])
            elif isinstance(entry, dict):
                entry = json.dumps(entry, sort_keys=True)
            names.append(str(entry))
        else:
            names.append(f"{url}#{index}")
    return np.asarray(names, dtype=str)


def open_stores(urls: list[str], *, allow_mixed_flow: bool = False) -> list[StoreInfo]:
    """Open stores for training and check that they can be mixed.

    Parameters
    ----------
    urls : list of str
        Store paths or fsspec URLs.
    allow_mixed_flow : bool
        Accept stores made with different crop-flow backends (their flow statistics differ).

    Returns
    -------
    list of StoreInfo

    Raises
    ------
    FileNotFoundError, ValueError
        A missing store or one of another schema version (:func:`synthgen.store.open_group`).
    synthgen.store.StoreDamageError
        A file of a finished shard is missing.
    ValueError
        No URL; a 3DPW or video store; a store without finished examples; a store whose
        ``joints_convention`` is not one of ``synthgen.store.JOINTS_CONVENTIONS`` (its joints3d
        would be misread); stores with different crop sizes; stores with different crop-flow backends (unless
        ``allow_mixed_flow``); NaN or infinite values (:func:`check_finite`). Messages name the
        stores.
    """
    if not urls:
        raise ValueError("no store given")
    infos, specs = [], []
    for url in urls:
        group = synthstore.open_group(str(url))
        attrs = dict(group.attrs)
        kind = attrs.get("kind", "synthetic")
        if kind != "synthetic":
            use = "trainer eval" if kind == "3dpw" else "trainer predict"
            raise ValueError(f"{url} is a '{kind}' store: training reads synthetic stores "
                             f"(synthgen build); use it with {use}")
        convention = attrs.get("joints_convention")
        if convention not in synthstore.JOINTS_CONVENTIONS:
            raise ValueError(f"{url}: joints convention {convention!r} is unknown to this trainer "
                             f"(it reads {sorted(synthstore.JOINTS_CONVENTIONS)}); rebuild the "
                             f"store with this version of synthgen")
        examples = synthstore.finished_examples(group)
        if examples.size == 0:
            raise ValueError(f"{url}: store has no finished shard yet")
        reader = synthstore.StoreReader(str(url), group)
        reader.check_present()
        done = np.flatnonzero(synthstore.finished_shards(group))
        check_finite(reader, str(url), done)
        surreal = np.concatenate([reader.read_shard("surreal_index", int(shard))  # = examples
                                  for shard in done])
        infos.append(StoreInfo(str(url), int(attrs["num_frames"]), int(attrs["crop_size"]),
                               synthstore.crop_flow_record(attrs), examples,
                               _person_names(attrs, str(url), surreal), reader.per_shard))
        specs.append(synthstore.spec(attrs, source=str(url)))
    fields = ("crop_size",) if allow_mixed_flow else ("crop_size", "crop_flow")
    for other in specs[1:]:
        synthstore.check_compatible(specs[0], other, fields=fields,
                                    what="these stores cannot be mixed",
                                    hint="pass --allow-mixed-flow (data.allow_mixed_flow) to train "
                                         "on different crop-flow backends anyway")
    return infos


#: Float arrays the trainer reads (targets, body pose and shape), checked by :func:`check_finite`.
FINITE_ARRAYS = ("joints3d", "joints2d", "joints2d_crop", "boxes", "pose", "betas")


def check_finite(reader: synthstore.StoreReader, url: str, shards: np.ndarray) -> None:
    """Refuse a store with NaN or infinite values in the float arrays the trainer reads
    (:data:`FINITE_ARRAYS`) in any of ``shards`` (the finished ones), one read per shard file.

    Raises
    ------
    ValueError
        Naming the store, the array and the first example with such values.
    """
    for name in (n for n in FINITE_ARRAYS if n in reader.specs):
        for shard in shards:
            values = reader.read_shard(name, int(shard))
            finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
            if not finite.all():
                example = int(shard) * reader.per_shard + int(np.argmin(finite))
                raise ValueError(f"{url}: example {example} has NaN or infinite values in "
                                 f"'{name}': rebuild the store (synthgen build) from clean inputs")


@dataclass(frozen=True)
class Split:
    """Examples of a split: ``items`` (M, 2) int64 rows (store number, example index),
    ``persons`` (M,) their SURREAL identities, ``num_frames`` (M,) frames of each example,
    ``shards`` (M,) int64 a label of each example's shard file (:func:`shard_labels`)."""

    items: np.ndarray
    persons: np.ndarray
    num_frames: np.ndarray
    shards: np.ndarray


def shard_labels(stores: list[StoreInfo], items: np.ndarray) -> np.ndarray:
    """(M,) int64: equal for the ``items`` rows (store number, example) in one shard of one store."""
    per = np.asarray([s.examples_per_shard for s in stores], dtype=np.int64)
    items = np.asarray(items, dtype=np.int64).reshape(-1, 2)
    shard = items[:, 1] // per[items[:, 0]]
    return items[:, 0] * (int(shard.max(initial=0)) + 1) + shard


def split_stores(stores: list[StoreInfo], *, val_every: int) -> tuple[Split, Split]:
    """Deterministic train/validation split that never puts one SURREAL clip in both.

    The distinct person identities of all stores are ordered by CRC-32 of their name (then the
    name); every ``val_every``-th of them, starting with the first, goes to validation with all its
    examples. With a single identity (nothing to split by) every ``val_every``-th example goes to
    validation instead.

    Returns
    -------
    train, val : Split
    """
    items = np.concatenate([np.stack([np.full(s.examples.size, k), s.examples], axis=1)
                            for k, s in enumerate(stores)]).astype(np.int64)
    persons = np.concatenate([s.persons for s in stores])
    frames = np.concatenate([np.full(s.examples.size, s.num_frames) for s in stores])
    names = sorted(set(persons.tolist()), key=lambda n: (zlib.crc32(n.encode()), n))
    if len(names) > 1:
        held_out = set(names[::val_every])
        val = np.array([p in held_out for p in persons.tolist()])
    else:
        val = np.arange(len(items)) % val_every == 0
    shards = shard_labels(stores, items)
    return (Split(items[~val], persons[~val], frames[~val], shards[~val]),
            Split(items[val], persons[val], frames[val], shards[val]))


# ----------------------------------------------------------------------------------------------
# Dataset and sampler (host side)


def arrays_for(modality: str) -> tuple[str, ...]:
    """The stored arrays a modality reads: the target arrays, plus ``rgb`` and/or ``flow``."""
    parts = MODALITIES[modality]
    return TARGET_ARRAYS + tuple(name for name in ("rgb", "flow") if name in parts)


class ClipDataset(Dataset):
    """Windows of stored examples, as numpy arrays; keys are ``(position, start)``.

    Parameters
    ----------
    stores : list of StoreInfo
    items : ndarray, shape (M, 2), int64
        (store number, example index) of each position (:attr:`Split.items`).
    clip_length : int
        Frames T of a window.
    arrays : tuple of str
        Stored arrays to read (:func:`arrays_for`).

    Raises
    ------
    ValueError
        A store lacks one of ``arrays`` (built with ``store.omit``), naming store and arrays.

    Notes
    -----
    Stores are opened lazily in the process that reads (each DataLoader worker opens its own),
    and never pickled; reads are checked (:class:`synthgen.store.StoreReader`: damage raises
    :class:`synthgen.store.StoreDamageError` naming store, array and shard). An item
    (``dataset[(position, start)]``) is a dict of frames ``start .. start + T - 1``: every name
    of ``arrays`` with the frame axis cut to the window (``rgb`` to its first T - 1 frames and
    ``flow`` to its T - 1 pairs: the pairs' inputs), plus ``flow_quantum`` (float32 pixels per
    stored flow unit) and ``position`` (int64). :attr:`layout` gives every key's shape and dtype.
    """

    def __init__(self, stores: list[StoreInfo], items: np.ndarray, *, clip_length: int,
                 arrays: tuple[str, ...]):
        self.stores = stores
        self.items = np.asarray(items, dtype=np.int64)
        self.clip_length = clip_length
        self.arrays = arrays
        for info in stores:
            held = synthstore.store_schema(synthstore.open_group(info.url).attrs)
            missing = [name for name in arrays if name not in held]
            if missing:
                raise ValueError(f"{info.url}: store has no {', '.join(missing)} (built with "
                                 f"store.omit), which this input modality reads; train another "
                                 f"modality or use a store that has them")
        specs = synthstore.store_schema(synthstore.open_group(stores[0].url).attrs)
        self.layout = {"position": ((), np.dtype(np.int64))}
        for name in arrays:
            spec = specs[name]
            frames = len(range(spec.shape[0])[self._window(name, 0)])
            self.layout[name] = ((frames, *spec.shape[1:]), np.dtype(spec.dtype).newbyteorder("<"))
        if "flow" in arrays:
            self.layout["flow_quantum"] = ((), np.dtype(np.float32))
        self.slots: BatchSlots | None = None  # set by make_loader
        self._readers: dict[int, synthstore.StoreReader] = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_readers"] = {}
        return state

    def __len__(self) -> int:
        return len(self.items)

    def _reader(self, number: int) -> synthstore.StoreReader:
        if number not in self._readers:
            self._readers[number] = synthstore.StoreReader(self.stores[number].url)
        return self._readers[number]

    def _window(self, name: str, start: int) -> slice:
        """Frames of ``name`` in the window starting at frame ``start``: T frames, T - 1 pairs."""
        pairs = name in ("rgb", "flow")
        return slice(start, start + self.clip_length - (1 if pairs else 0))

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        out = {name: np.empty(shape, dtype) for name, (shape, dtype) in self.layout.items()}
        self._item(key, out)
        return {name: value if value.ndim else value[()] for name, value in out.items()}

    def __getitems__(self, keys) -> dict[str, torch.Tensor] | SlotBatch:
        """The batch of ``keys``: the stacked tensors ``default_collate`` would make of the items,
        each example decompressed straight into its row.

        When the batch sampler gave ``keys`` a free slot of :attr:`slots` (``keys.slot``, see
        :func:`make_loader`), the rows are written into that reused buffer and only a
        :class:`SlotBatch` is returned; otherwise the tensors are new, in shared memory inside
        a DataLoader worker (as ``default_collate`` makes them there).
        """
        slot = getattr(keys, "slot", None)
        if slot is not None:
            rows = self.slots.arrays(slot)
            for row, key in enumerate(keys):
                self._item(key, {name: array[row, ...] for name, array in rows.items()})
            return SlotBatch(self.slots.token, slot, len(keys))
        shared = torch.utils.data.get_worker_info() is not None
        batch = {}
        for name, (shape, dtype) in self.layout.items():
            value = torch.from_numpy(np.empty(0, dtype))
            shape = (len(keys), *shape)
            if shared:  # allocated in shared memory, as default_collate does in workers
                storage = value._typed_storage()._new_shared(math.prod(shape))
                batch[name] = value.new(storage).resize_(shape)
            else:
                batch[name] = torch.empty(shape, dtype=value.dtype)
        for row, key in enumerate(keys):
            self._item(key, {name: tensor[row].numpy() for name, tensor in batch.items()})
        return batch

    def _item(self, key: tuple[int, int], into: dict[str, np.ndarray]) -> None:
        """Write the item of ``key`` into the arrays ``into`` (one per :attr:`layout` key)."""
        position, start = key
        number, example = self.items[position]
        reader = self._reader(int(number))
        into["position"][...] = position
        for name in self.arrays:
            target = into[name]
            if target.shape == reader.specs[name].shape:
                reader.read(name, int(example), out=target)  # the whole chunk, in place
            else:
                target[...] = reader.read(name, int(example))[self._window(name, start)]
        if "flow" in self.arrays:
            into["flow_quantum"][...] = reader.array_attrs("flow")["quantum_px"]


class ClipBatchSampler(Sampler):
    """Batches of ``(position, start)`` keys for :class:`ClipDataset`.

    Parameters
    ----------
    num_frames : ndarray, shape (M,), int
        Frames of each example (:attr:`Split.num_frames`).
    clip_length : int
        Window length T; examples shorter than T are refused.
    batch_size : int
    seed : int
    shuffle : bool
        True (training): each epoch a permutation of the examples and a random window start per
        example, both drawn from ``numpy.random.default_rng([seed, epoch])``, incomplete last batch
        dropped. False (validation): examples in order, the centred window, last batch kept.
    shards : ndarray, shape (M,), int, optional
        Shard label of each example (:attr:`Split.shards`). Given, a shuffled epoch is
        shard-sequential: the shards in a random order, each shard's examples in a random order
        within it, so reads sweep one shard file after another.

    Notes
    -----
    The order of an epoch depends only on ``(seed, epoch)``, so a resumed run rebuilds it and
    skips the batches already consumed (:meth:`set_epoch`). Iteration happens in the main process
    (DataLoader workers only read), so persistent workers see every epoch's order.
    """

    def __init__(self, num_frames: np.ndarray, *, clip_length: int, batch_size: int, seed: int,
                 shuffle: bool = True, shards: np.ndarray | None = None):
        self.num_frames = np.asarray(num_frames, dtype=np.int64)
        self.shards = None if shards is None else np.asarray(shards, dtype=np.int64)
        if self.num_frames.size and self.num_frames.min() < clip_length:
            raise ValueError(f"clip_length {clip_length} exceeds the {self.num_frames.min()} "
                             f"frames of the shortest example")
        self.clip_length = clip_length
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, *, skip_batches: int = 0) -> None:
        """Select the epoch to iterate and how many of its first batches to skip (resume)."""
        self.epoch = epoch
        self.skip = skip_batches

    def order(self, epoch: int) -> np.ndarray:
        """The keys of an epoch, shape (batches, batch_size, 2) (position, start); the last batch
        of an unshuffled order may be padded with -1 rows."""
        n = self.num_frames.size
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            positions = rng.permutation(n)
            if self.shards is not None:
                labels, shard = np.unique(self.shards[positions], return_inverse=True)
                rank = rng.permutation(len(labels))  # the place of each shard in the epoch
                positions = positions[np.argsort(rank[shard], kind="stable")]
            starts = rng.integers(0, self.num_frames[positions] - self.clip_length + 1)
            usable = (n // self.batch_size) * self.batch_size
            keys = np.stack([positions, starts], axis=1)[:usable]
        else:
            starts = (self.num_frames - self.clip_length) // 2
            keys = np.stack([np.arange(n), starts], axis=1)
            pad = -len(keys) % self.batch_size
            keys = np.concatenate([keys, np.full((pad, 2), -1)])
        return keys.reshape(-1, self.batch_size, 2)

    def __len__(self) -> int:
        if self.shuffle:
            return self.num_frames.size // self.batch_size
        return -(-self.num_frames.size // self.batch_size)

    def __iter__(self):
        for batch in self.order(self.epoch)[self.skip:]:
            yield [(int(p), int(s)) for p, s in batch if p >= 0]


class BatchSlots:
    """Batch buffers reused from batch to batch, shared with the DataLoader workers.

    A new batch tensor in a worker is new shared memory, and the pages of every new buffer are
    faulted in and zeroed by the kernel: for 30 pairs of 224-px flow that costs about as much as
    decompressing them (measured in ``benchmarks/bench_read.py``). So :func:`make_loader`
    allocates ``count`` buffers of ``rows`` examples once, before the workers start (they inherit
    or receive them); the batch sampler hands each batch a free one (:meth:`take`), the worker
    decompresses into it and returns a :class:`SlotBatch`, and the loader gives the training loop
    tensors that are views of the buffer (:meth:`tensors`). The buffer is free again only when
    every such tensor, and every view of them, is gone (a finaliser on the numpy arrays they are
    made from), or when it was handed to a batch that the loader dropped (an epoch abandoned
    midway; :meth:`reclaim`). With no buffer free, a batch gets new tensors as before.

    Parameters
    ----------
    layout : dict of str to (shape, dtype)
        One example of every key (:attr:`ClipDataset.layout`).
    rows : int
        Examples per buffer (the batch size).
    count : int
        Buffers.
    shared : bool
        Shared memory (for worker processes), else private memory.
    """

    def __init__(self, layout: dict, *, rows: int, count: int, shared: bool):
        self.token = uuid.uuid4().hex
        self.rows = rows
        self.fields, offset = {}, 0
        for name, (shape, dtype) in layout.items():
            shape = (rows, *shape)
            self.fields[name] = (offset, shape, np.dtype(dtype))
            offset += -(-math.prod(shape) * np.dtype(dtype).itemsize // 64) * 64
        self.storages = [torch.UntypedStorage._new_shared(offset) if shared else
                         torch.UntypedStorage(offset) for _ in range(count)]
        self._state = ["free"] * count  # "free", "sent" (handed to a batch), "held" (tensors out)
        self._held = [0] * count  # live numpy arrays under the tensors of a held buffer
        self._lock = threading.Lock()
        _SLOTS[self.token] = self

    def __getstate__(self):  # to spawned workers: the buffers (torch shares their memory)
        return {"token": self.token, "rows": self.rows, "fields": self.fields,
                "storages": self.storages}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def arrays(self, slot: int) -> dict[str, np.ndarray]:
        """New numpy views ``(rows, ...)`` of buffer ``slot``, one per layout key."""
        memory = torch.empty(0, dtype=torch.uint8).set_(self.storages[slot]).numpy()
        return {name: memory[offset:offset + math.prod(shape) * dtype.itemsize].view(dtype)
                .reshape(shape) for name, (offset, shape, dtype) in self.fields.items()}

    def take(self) -> int | None:
        """A free buffer, now "sent"; None when every buffer is in use."""
        with self._lock:
            if "free" not in self._state:
                return None
            slot = self._state.index("free")
            self._state[slot] = "sent"
            return slot

    def reclaim(self) -> None:
        """Free every "sent" buffer: called when no batch is in flight (an epoch's start)."""
        with self._lock:
            self._state = ["free" if s == "sent" else s for s in self._state]

    def _release(self, slot: int) -> None:
        with self._lock:
            self._held[slot] -= 1
            if self._held[slot] == 0:
                self._state[slot] = "free"

    def tensors(self, batch: SlotBatch) -> dict[str, torch.Tensor]:
        """The batch as tensors that are views of its buffer (the buffer is held until they
        are all gone)."""
        arrays = {name: array[:batch.count] for name, array in self.arrays(batch.slot).items()}
        with self._lock:
            self._state[batch.slot] = "held"
            self._held[batch.slot] = len(arrays)
        for array in arrays.values():
            weakref.finalize(array, self._release, batch.slot)
        return {name: torch.from_numpy(array) for name, array in arrays.items()}

    def pinned(self, batch: SlotBatch) -> dict[str, torch.Tensor]:
        """The batch copied into pinned memory; the buffer is free at once."""
        out = {name: torch.from_numpy(array[:batch.count]).pin_memory()
               for name, array in self.arrays(batch.slot).items()}
        with self._lock:
            self._state[batch.slot] = "free"
        return out


#: Live :class:`BatchSlots` of this process by token (a :class:`SlotBatch` names its own).
_SLOTS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class SlotBatch:
    """What a worker returns for a batch written into buffer ``slot`` of the :class:`BatchSlots`
    ``token``: its first ``count`` rows."""

    token: str
    slot: int
    count: int

    def pin_memory(self, device=None) -> dict[str, torch.Tensor]:
        """Called by the DataLoader's pinning thread (in the main process)."""
        return _SLOTS[self.token].pinned(self)


class SlotKeys(list):
    """A batch's keys and the buffer its rows go to (``slot``)."""

    def __init__(self, keys, slot: int):
        super().__init__(keys)
        self.slot = slot


class _SlotSampler(Sampler):
    """``sampler``'s batches, each given a free buffer of ``slots`` when one is and it fits."""

    def __init__(self, sampler, slots: BatchSlots):
        self.sampler, self.slots = sampler, slots

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        # The body runs on the loader's first request of an epoch, after a persistent loader
        # has drained what an abandoned epoch left in flight: nothing "sent" is in use.
        self.slots.reclaim()
        for keys in self.sampler:
            slot = self.slots.take() if len(keys) <= self.slots.rows else None
            yield keys if slot is None else SlotKeys(keys, slot)


class _SlotLoader(DataLoader):
    """A DataLoader whose :class:`SlotBatch` results become tensors (:meth:`BatchSlots.tensors`)."""

    def __iter__(self):
        slots = self.dataset.slots
        for batch in super().__iter__():
            yield slots.tensors(batch) if isinstance(batch, SlotBatch) else batch


#: Buffers beyond the batches a loader keeps in flight (``prefetch_factor`` per worker): the batch
#: the training loop holds, the one it is being handed, and one the pinning thread holds.
SPARE_SLOTS = 3


def make_loader(dataset: ClipDataset, sampler, *, num_workers: int,
                pin_memory: bool) -> DataLoader:
    """A DataLoader over ``dataset`` in ``sampler``'s batches (persistent workers when > 0).

    Batches are decompressed into reused buffers (:class:`BatchSlots`, sized by
    ``sampler.batch_size``), so a batch's tensors are views of one: they stay valid while
    referenced, and their buffer is reused once they are gone.

    The loader has its own ``torch.Generator``: starting an epoch never draws from the global
    torch RNG (which dropout uses), so a resumed run's random stream matches an uninterrupted one.
    """
    prefetch = 2 if num_workers > 0 else None
    dataset = copy.copy(dataset)  # its own buffers (the caller's object is left as it was)
    dataset.slots = BatchSlots(dataset.layout, rows=sampler.batch_size,
                               count=(prefetch or 0) * num_workers + SPARE_SLOTS,
                               shared=num_workers > 0)
    return _SlotLoader(dataset, batch_sampler=_SlotSampler(sampler, dataset.slots),
                       num_workers=num_workers, pin_memory=pin_memory,
                       persistent_workers=num_workers > 0, prefetch_factor=prefetch,
                       generator=torch.Generator(), collate_fn=_collate)


def _collate(data):
    """Batches from :meth:`ClipDataset.__getitems__` are collated already."""
    return data if isinstance(data, (dict, SlotBatch)) else torch.utils.data.default_collate(data)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Copy a batch to ``device`` (non-blocking: from pinned memory the copy overlaps compute)."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# ----------------------------------------------------------------------------------------------
# Device side


def hidden_keypoints(batch: dict[str, torch.Tensor], *, config: DataConfig,
                     generator: torch.Generator | None) -> torch.Tensor:
    """Hidden state of the 12 heatmap keypoints that the input shows.

    Parameters
    ----------
    batch : dict
        Device batch with ``visibility`` (B, T, 24) uint8 bitmask (0 = visible).
    config : DataConfig
        Randomisation probabilities.
    generator : torch.Generator or None
        With a generator (training), :func:`trainer.randomize.randomize_visibility` is applied;
        None (validation) keeps the stored visibility.

    Returns
    -------
    Tensor, shape (B, T, 12), bool
        True where hidden, in :data:`synthgen.core.joints.HEATMAP_KEYPOINTS` order.
    """
    keypoints = torch.as_tensor(HEATMAP_KEYPOINTS, device=batch["visibility"].device)
    hidden = batch["visibility"][..., keypoints] != 0
    if generator is None:
        return hidden
    leg = torch.isin(keypoints, torch.as_tensor(LEG_JOINTS, device=keypoints.device))
    return randomize_visibility(hidden, leg, generator=generator,
                                leg_unhide_probability=config.leg_unhide_probability,
                                flip_probability=config.flip_probability)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, P, C, S, S) -> (B, P, C, size, size) by area averaging (identity when equal)."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images.flatten(0, 1), size=(size, size), mode="area").unflatten(
        0, images.shape[:2])


def make_inputs(batch: dict[str, torch.Tensor], *, config: DataConfig, crop_size: int,
                hidden: torch.Tensor) -> torch.Tensor:
    """Network inputs of every pair, built on the batch's device.

    Parameters
    ----------
    batch : dict
        Device batch of :class:`ClipDataset` items: ``total_occlusion`` (B, T) bool,
        ``joints2d_crop`` (B, T, 24, 2) crop px; ``rgb`` (B, T-1, S, S, 3) uint8 and ``flow``
        (B, T-1, S, S, 2) int16 with ``flow_quantum`` (B,) when the modality needs them.
    config : DataConfig
        ``modality``, ``input_size``, ``heatmap_sigma``, ``flow_scale``.
    crop_size : int
        S, side of the stored crops in pixels.
    hidden : Tensor, shape (B, T, 12), bool
        Hidden heatmap keypoints (:func:`hidden_keypoints`).

    Returns
    -------
    Tensor, shape (B, T-1, C, input_size, input_size), float32
        Channels in :func:`channel_layout` order: RGB normalised with ImageNet statistics;
        flow x, y (crop pixels) and its magnitude, divided by ``flow_scale``; 12 heatmaps of frame
        t in crop t (peak 1, sigma ``heatmap_sigma`` crop px, zero when hidden); then the
        total-occlusion indicator of frame t (1 on totally occluded frames, whose other channels
        are all zero).
    """
    occluded = batch["total_occlusion"][:, :-1]
    pairs = occluded.shape[1]
    size = config.input_size
    parts = []
    for part in MODALITIES[config.modality]:
        if part == "rgb":
            rgb = batch["rgb"].permute(0, 1, 4, 2, 3).float() / 255.0
            mean = torch.tensor(IMAGENET_MEAN, device=rgb.device)[:, None, None]
            std = torch.tensor(IMAGENET_STD, device=rgb.device)[:, None, None]
            parts.append(_resize((rgb - mean) / std, size))
        elif part == "flow":
            scale = batch["flow_quantum"].float()[:, None, None, None, None] / config.flow_scale
            flow = batch["flow"].permute(0, 1, 4, 2, 3).float() * scale
            magnitude = torch.linalg.vector_norm(flow, dim=2, keepdim=True)
            parts.append(_resize(torch.cat([flow, magnitude], dim=2), size))
        else:
            keypoints = batch["joints2d_crop"][:, :pairs][..., HEATMAP_KEYPOINTS, :].float()
            parts.append(render_heatmaps(keypoints, ~hidden[:, :pairs], size=size,
                                         crop_size=crop_size, sigma=config.heatmap_sigma))
    keep = (~occluded).float()[..., None, None, None]
    indicator = occluded.float()[..., None, None, None].expand(-1, -1, 1, size, size)
    return torch.cat([torch.cat(parts, dim=2) * keep, indicator], dim=2)


def crop_to_normalised(pixels: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Crop pixels (centres at integers) -> normalised crop coordinates (-1..1 edge to edge)."""
    return (pixels + 0.5) * (2.0 / crop_size) - 1.0


def make_targets(batch: dict[str, torch.Tensor], *, crop_size: int) -> dict[str, torch.Tensor]:
    """Targets of both heads of every pair.

    Parameters
    ----------
    batch : dict
        Device batch with ``joints3d`` (B, T, 24, 3) camera metres, ``joints2d`` (B, T, 24, 2)
        frame px, ``joints2d_crop`` (B, T, 24, 2) crop px, ``boxes`` (B, T, 3) (x0, y0, side)
        frame px, ``visibility`` (B, T, 24) bitmask.
    crop_size : int
        Side of the stored crops in pixels.

    Returns
    -------
    dict of str to Tensor
        ``joints3d`` (B, T-1, 2, 24, 3) metres: frames t and t + 1 of pair t;
        ``keypoints`` (B, T-1, 2, 24, 2) normalised crop coordinates *in box t*: frame t's
        ``joints2d_crop`` and frame t + 1's ``(joints2d[t+1] - box_t[:2]) * crop_size / box_t[2]``;
        ``visible`` (B, T-1, 2, 24) bool, stored visibility of frames t and t + 1.
    """
    boxes = batch["boxes"].float()
    current = batch["joints2d_crop"][:, :-1].float()
    future = ((batch["joints2d"][:, 1:].float() - boxes[:, :-1, None, :2])
              * (crop_size / boxes[:, :-1, None, 2:3]))
    keypoints = crop_to_normalised(torch.stack([current, future], dim=2), crop_size)
    return {"joints3d": pair_frames(batch["joints3d"].float()), "keypoints": keypoints,
            "visible": pair_frames(batch["visibility"] == 0)}


def read_array(stores: list[StoreInfo], items: np.ndarray, name: str) -> np.ndarray:
    """One stored array of some examples, read in the calling process.

    Parameters
    ----------
    stores : list of StoreInfo
    items : ndarray, shape (M, 2)
        (store number, example index) rows.
    name : str
        A small per-example array (e.g. ``joints3d``, ``visibility``).

    Returns
    -------
    ndarray, shape (M, ...)
        In stored dtype and units.
    """
    readers = {k: synthstore.StoreReader(s.url) for k, s in enumerate(stores)}
    rows = []
    for k, e in items:
        rows.append(readers[int(k)].read(name, int(e)))
    return np.stack(rows)
