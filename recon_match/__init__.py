"""recon-match: dense detector-free matching for COLMAP/pycolmap SfM and localization."""

__version__ = "0.1.0"
