"""Resumable store of raw (pre-quantization) matches: a folder of h5 shards.

Matches are appended, one complete group per pair, to `.shard-NNNNN.h5.partial` (flushed
after every pair); once it holds `shard_size` pairs it is closed and renamed to
`shard-NNNNN.h5`. A killed run therefore loses at most the pair being written: on restart
the pairs of a leftover partial shard are copied into a finished shard (a partial that
HDF5 cannot open is discarded with a warning). No file under a final name is ever
half-written. `conf.json` records the settings the matches were made with, so a rerun with
different settings cannot silently mix them.
"""

import json
import logging
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np

from .fileio import atomic_path
from .h5io import list_groups, open_h5, write_group

logger = logging.getLogger(__name__)

FIELDS = ("keypoints0", "keypoints1", "scores", "refined")


class RawStore:
    """Raw matches per pair key; `add` appends, `load` reads, `keys` lists what is done."""

    def __init__(self, folder, fingerprint: dict, shard_size: int = 256):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self._check_fingerprint(fingerprint)
        self._salvage_partials()
        self.index = {}  # pair key -> shard path
        for shard in sorted(self.folder.glob("shard-*.h5")):
            with open_h5(shard) as f:
                for key in list_groups(f, 2):
                    self.index[key] = shard
        self._open = None
        self._open_count = 0
        self._readers = OrderedDict()

    def _check_fingerprint(self, fingerprint):
        path = self.folder / "conf.json"
        text = json.dumps(fingerprint, sort_keys=True, indent=1)
        if path.is_file():
            if json.loads(path.read_text()) != json.loads(text):
                raise ValueError(f"{self.folder}: raw matches were made with other settings "
                                 f"({path}); use overwrite=True or another output name")
            return
        with atomic_path(path) as tmp:
            tmp.write_text(text)

    def _next_shard(self) -> int:
        nums = [int(p.name.split("-")[1].split(".")[0]) for p in self.folder.glob("*shard-*.h5*")]
        return max(nums, default=-1) + 1

    def _salvage_partials(self):
        for part in sorted(self.folder.glob(".shard-*.h5.partial")):
            try:
                with h5py.File(part, "r") as src:
                    keys = [k for k in list_groups(src, 2)
                            if all(f in src[k] for f in FIELDS)]
                    data = {k: {f: src[k][f][()] for f in FIELDS} for k in keys}
            except Exception as e:  # a file killed mid-write can fail in many ways
                logger.warning("discarding unreadable partial shard %s (%s)", part, e)
                part.unlink()
                continue
            final = self.folder / part.name[1:].replace(".partial", "")
            if data:
                with atomic_path(final) as tmp, h5py.File(tmp, "w") as dst:
                    for k, d in data.items():
                        write_group(dst, k, d)
                logger.info("recovered %d pairs from interrupted shard %s", len(data), part)
            part.unlink()

    def __contains__(self, key):
        return key in self.index

    def add(self, key: str, match: dict):
        """Append one pair's raw matches (keypoints0/1 M x 2 float32 pixels, scores M,
        refined M bool: placed by the NCC refinement)."""
        if self._open is None:
            n = self._next_shard()
            self._open_path = self.folder / f".shard-{n:05d}.h5.partial"
            self._open = h5py.File(self._open_path, "w")
            self._open_count = 0
        write_group(self._open, key, {
            "keypoints0": np.asarray(match["keypoints0"], np.float32).reshape(-1, 2),
            "keypoints1": np.asarray(match["keypoints1"], np.float32).reshape(-1, 2),
            "scores": np.asarray(match["scores"], np.float32).reshape(-1),
            "refined": np.asarray(match["refined"], bool).reshape(-1)})
        self._open.flush()
        self._open_count += 1
        self.index[key] = None  # readable once its shard is finished
        if self._open_count >= self.shard_size:
            self.finish_shard()

    def finish_shard(self):
        """Close the shard being written and give it its final name."""
        if self._open is None:
            return
        keys = list_groups(self._open, 2)
        self._open.close()
        self._open = None
        final = self.folder / self._open_path.name[1:].replace(".partial", "")
        self._open_path.rename(final)
        for k in keys:
            self.index[k] = final

    def load(self, key: str, fields=FIELDS) -> dict:
        """Raw matches of one pair, `fields` of them (finished shards only; call
        `finish_shard` first)."""
        path = self.index[key]
        if path not in self._readers:
            self._readers[path] = h5py.File(path, "r")
            if len(self._readers) > 8:  # a few open handles, not one per shard
                self._readers.popitem(last=False)[1].close()
        g = self._readers[path][key]
        return {f: g[f][()] for f in fields}

    def close(self):
        self.finish_shard()
        for f in self._readers.values():
            f.close()
        self._readers.clear()
