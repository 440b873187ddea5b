"""cutout: a self-hosted, Cloudinary-compatible image origin with ML background removal."""

__version__ = "0.1.0"
