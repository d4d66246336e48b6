"""Data: the procedural shapes dataset, the imagefolder loader, captions and the oracle."""

from edge_t2i.data.captions import Caption, make_caption, parse_caption
from edge_t2i.data.imagefolder import ImageFolder, make_shapes_dataset, preview_grid, read_imagefolder

__all__ = ["Caption", "ImageFolder", "make_caption", "make_shapes_dataset", "parse_caption",
           "preview_grid", "read_imagefolder"]
