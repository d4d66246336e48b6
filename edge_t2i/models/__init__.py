"""Models: the configuration, the DF-GAN networks, checkpoints and the text encoder.

`config` is torch-free (packs and the runtime read it); `networks`, `checkpoint`
and `text_encoder` need the `train` extra (torch, safetensors, sentence-transformers).
"""
