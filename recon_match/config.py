"""Dict configs with defaults: the one merge every module uses."""

import copy


def merge_conf(default: dict, conf: dict | None, what: str = "config", nested=()) -> dict:
    """`{**default, **conf}`; unknown keys raise so that a typo fails loudly.

    Keys listed in `nested` are sub-configs merged the same way; every other value, dicts
    such as mixture weights included, is replaced as a whole.
    """
    conf = conf or {}
    unknown = sorted(set(conf) - set(default))
    if unknown:
        raise ValueError(f"unknown {what} option(s) {unknown}; known: {sorted(default)}")
    out = copy.deepcopy(default)
    for k, v in conf.items():
        out[k] = merge_conf(default[k], v, f"{what}.{k}") if k in nested else v
    return out
