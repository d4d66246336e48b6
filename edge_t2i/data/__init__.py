"""Data: the procedural shapes dataset, its captions, prompt text and the imagefolder convention."""

from edge_t2i.data.captions import Caption, make_caption, parse_caption
from edge_t2i.data.imagefolder import ImageFolder, make_shapes_dataset, read_imagefolder, write_imagefolder
from edge_t2i.data.prompts import normalize_prompt, read_prompts

__all__ = ["Caption", "ImageFolder", "make_caption", "make_shapes_dataset", "normalize_prompt", "parse_caption",
           "read_imagefolder", "read_prompts", "write_imagefolder"]
