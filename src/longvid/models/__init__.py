"""Stage 4: the projector and language model, built from transformers modules.

`config` (`LongVideoConfig`: vision tower, projector, compressor, LLM, chat template, image
processing; ``config.json``), `modeling` (`LongVideoLM` with `from_pretrained` /
`save_pretrained`, safetensors by default), `registry` (named configs: ``tiny-longva``,
``longva-7b``; `create_model`), `longva_checkpoint` (the released LongVA layout) and `rope`
(RoPE tables through transformers' Qwen2 rotary embedding).
"""
