"""Stage 5: prompt assembly: text, per-frame visual tokens, subtitles and timestamps
interleaved under a chat template, checked against the context window. Filled in by the
model-core and MiniGPT4-Video issues.
"""
