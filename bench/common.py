"""Helpers shared by the benchmark scripts."""


def timing_model(threads: int):
    """The shipped matcher on CPU with `threads` torch threads, keeping every sampled match:
    a timing must not depend on how many matches today's weights happen to find."""
    import torch

    from recon_match.model import load_matcher

    torch.set_num_threads(threads)
    model = load_matcher(device="cpu")
    model.conf["sample"]["min_certainty"] = 0.0
    return model
