"""Visual localization of query images against a reconstruction (`recon-match localize`).

`main(conf, model_dir, query_dir, out_dir, ...)` is the stage function; the pieces:
`refmap` (the map as 2D observations of 3D points), `selection` (retrieval / GPS),
`matchers` (dense and SIFT query matchers), `pose` (2D–3D aggregation + pycolmap absolute
pose), `camera` (query intrinsics), `mapping` (a map triangulated at known poses).
"""

from .camera import parse_camera, query_camera
from .localizer import default_conf, main, read_log
from .pose import estimate_pose, pose_error
from .refmap import ReferenceMap, find_model_dir

__all__ = ["ReferenceMap", "default_conf", "estimate_pose", "find_model_dir", "main",
           "parse_camera", "pose_error", "query_camera", "read_log"]
