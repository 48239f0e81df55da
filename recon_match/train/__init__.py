"""Trainer, losses, validation metrics and checkpoints of the dense matcher."""

from .trainer import Trainer

__all__ = ["Trainer"]
