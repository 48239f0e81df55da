"""hloc's pairs text format: one "name0 name1" per line; '#' starts a comment."""

import logging
from pathlib import Path

from ..fileio import atomic_path, safe_name

logger = logging.getLogger(__name__)


def read_pairs(path, names=None) -> list[tuple[str, str]]:
    """Pairs listed in `path`, in file order, duplicates (either order) and self-pairs dropped.

    Every name must be safe (relative, no `..`) and, when `names` is given, one of them;
    errors name the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such pairs file")
    known = set(names) if names is not None else None
    pairs, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(f"{path}:{lineno}: expected 'name0 name1', got {line!r}")
            for n in parts:
                try:
                    safe_name(n, "image name")
                except ValueError as e:
                    raise ValueError(f"{path}:{lineno}: {e}") from None
                if known is not None and n not in known:
                    raise ValueError(f"{path}:{lineno}: unknown image {n!r} "
                                     f"(not in the image folder)")
            n0, n1 = parts
            key = (n0, n1) if n0 < n1 else (n1, n0)
            if n0 == n1 or key in seen:
                continue
            seen.add(key)
            pairs.append((n0, n1))
    if not pairs:
        raise ValueError(f"{path}: no pairs in file")
    return pairs


def write_pairs(path, pairs) -> int:
    """Write `pairs` (iterable of (name0, name1)) atomically; returns the number written."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for n0, n1 in pairs:
            if any(c.isspace() for c in n0 + n1):
                raise ValueError(f"{path}: image names with spaces cannot be written in the "
                                 f"pairs format ({n0!r}, {n1!r})")
            f.write(f"{n0} {n1}\n")
            n += 1
    logger.info("wrote %d pairs to %s", n, path)
    return n
