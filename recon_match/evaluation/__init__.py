"""Ground-truth evaluation of reconstructions: loading GT models, alignment, pose errors, AUC."""

from .gt import check_names, load_model
from .metrics import THRESHOLDS, align, evaluate, pose_auc, relative_pose_errors

__all__ = ["THRESHOLDS", "align", "check_names", "evaluate", "load_model", "pose_auc",
           "relative_pose_errors"]
