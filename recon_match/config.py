"""Dict configs with defaults: the one merge every module uses."""

import copy


def merge_conf(default: dict, conf: dict | None, what: str = "config") -> dict:
    """`{**default, **conf}`, recursing into non-empty dict defaults; unknown keys raise.

    A typo in a config must fail loudly instead of being silently ignored. An empty dict
    default (`{}`) is an open sub-config validated by whoever consumes it.
    """
    out = copy.deepcopy(default)
    unknown = sorted(set(conf or {}) - set(default))
    if unknown:
        raise ValueError(f"unknown {what} option(s) {unknown}; known: {sorted(default)}")
    for k, v in (conf or {}).items():
        sub = default[k]
        out[k] = merge_conf(sub, v, f"{what}.{k}") if isinstance(sub, dict) and sub and isinstance(v, dict) else v
    return out
