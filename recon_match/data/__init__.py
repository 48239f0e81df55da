"""Synthetic training mixture with exact dense ground truth (see `dataset.MixtureDataset`)."""

from .dataset import MixtureDataset, default_conf

__all__ = ["MixtureDataset", "default_conf"]
