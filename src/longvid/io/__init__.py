"""Stage 1 of the pipeline: media in.

Decoding and frame sampling with exact presentation timestamps (`video`), subtitle reading and
alignment to sampled frames (`subtitles`), MiniGPT4-Video's frame-and-subtitle walks, reference
and corrected (`subtitle_alignment`). Everything later receives a `Clip` and never
re-derives times from a frame rate.
"""

from longvid.io.video import Clip, VideoInfo, probe, read_frames, sample

__all__ = ["Clip", "VideoInfo", "probe", "read_frames", "sample"]
