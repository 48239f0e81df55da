"""Safe file handling: atomic writes and names that cannot escape their folder."""

import contextlib
import os
from pathlib import Path, PurePosixPath


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; rename it over `path` only on success.

    A crash or Ctrl-C inside the block leaves any previous `path` untouched and removes
    the partial file, so a half-written file never sits under its final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def safe_name(name: str, what: str = "name") -> str:
    """Return `name` if it is a relative path that stays inside its folder, else raise.

    Names come from pairs files, databases and h5 keys; `../x` or `/etc/x` must never make
    us read or write outside the folders we were given.
    """
    p = PurePosixPath(str(name).replace("\\", "/"))
    if not str(name) or p.is_absolute() or ".." in p.parts or str(name).startswith("~"):
        raise ValueError(f"unsafe {what} {name!r}: must be a relative path inside its folder")
    return str(name)
