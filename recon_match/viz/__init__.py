"""Pictures of reconstructions, matches and training runs.

Modules (import them directly; nothing heavy is imported here):
- `scene3d`: a `Scene` (points, camera frustums, query cameras) from a `pycolmap.Reconstruction`,
  numpy only.
- `render`: Open3D headless PNG rendering with an automatic view, and the interactive window.
  open3d is optional (`pip install "recon-match[viz]"`) and imported only when rendering.
- `export`: PLY files of the points and of the cameras as line sets (numpy, no open3d needed).
- `matches`: match pictures (side by side, coloured by certainty or error), dense warp and
  certainty images.
- `plots`: training curves and validation metrics from a CSV log; bar charts of results.
- `report`: a small Markdown report that embeds pictures and tables.
- `png`: atomic PNG writing.
"""
