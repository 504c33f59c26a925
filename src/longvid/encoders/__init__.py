"""Stage 2: from frames to what a vision tower eats.

`anyres`: LLaVA-NeXT / LongVA image geometry (best grid resolution, resize-and-pad, crops) and
CLIP preprocessing through transformers' image processor, for images (anyres, pad) and video
frames. The towers themselves are transformers modules owned by `longvid.models.LongVideoLM`
(`encode_images` batches frames through them in chunks).
"""
