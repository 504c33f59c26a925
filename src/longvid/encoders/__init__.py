"""Stage 2: vision towers (CLIP / SigLIP / EVA-style via transformers) that turn frames into
patch features `(T, h, w, D)`, with the on-disk feature cache shared by every compressor.

Filled in by the model-core issue; nothing lives here yet.
"""
