"""Presets in the format of `hloc.match_dense.confs`, added there by `hloc_plugins.register()`.

`dfactor` 16: hloc trims each resized image to a multiple of it, and our network works on a
1/16 grid (it would pad to a multiple of 16 otherwise). `cell_size` / `max_error` drive hloc's
quantization of dense matches into shared keypoints (pixels of the original images): one
keypoint per `cell_size` cell, matches farther than `max_error` from it dropped.
"""

CONFS = {
    # Default: 640 px, 5000 matches per pair, 4 px cells.
    "recon_dense": {
        "output": "matches-recon_dense",
        "model": {"name": "recon_dense", "max_num_matches": 5000},
        "preprocessing": {"grayscale": False, "resize_max": 640, "dfactor": 16},
        "max_error": 2,
        "cell_size": 4,
    },
    # Faster on CPU: 480 px, 2000 matches per pair, 8 px cells (fewer, longer tracks).
    "recon_dense_fast": {
        "output": "matches-recon_dense_fast",
        "model": {"name": "recon_dense", "max_num_matches": 2000},
        "preprocessing": {"grayscale": False, "resize_max": 480, "dfactor": 16},
        "max_error": 2,
        "cell_size": 8,
    },
}
