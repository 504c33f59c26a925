"""Stage 4: the projector and language model (transformers modules), config dataclasses,
`from_pretrained` / `save_pretrained`, and the registry of named configs. Filled in by the
model-core issue.
"""
