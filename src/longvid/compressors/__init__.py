"""Stage 3: visual token compressors, one file per paper, behind one registry.

`registry`: `get_compressor(name, params)` and the `CompressedVideo` every compressor returns
(tokens with the frame and time each came from). `none` keeps every patch token; `longva`
(`longva.py`: LongVA's 2x2 pooling and UniRes merge). LLaMA-VID, PPLLaVA and MiniGPT4-Video
join as their own files.
"""
