"""The dense matcher network (`DenseMatcher`) and loading of the shipped weights."""

from .loading import WEIGHTS_PATH, load_matcher
from .matcher import DenseMatcher

__all__ = ["DenseMatcher", "load_matcher", "WEIGHTS_PATH"]
