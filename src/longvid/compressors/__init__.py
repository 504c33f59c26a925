"""Stage 3: visual token compressors, one file per paper.

`none`, `longva` (2x2 pooling, LongVA), `llamavid` (context + content tokens, LLaMA-VID),
`ppllava` (prompt-guided 3-D pooling, PPLLaVA), `minigpt4video` (1x4 merge, MiniGPT4-Video);
each returns visual tokens with the time of the frame each came from. Filled in by the
compressor issues.
"""
