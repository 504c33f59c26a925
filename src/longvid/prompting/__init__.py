"""Stage 5: prompt assembly: text, per-frame visual tokens, subtitles and timestamps
interleaved under a chat template, checked against the context window.

- `longvid.prompting.templates`: chat templates as data (`ChatTemplate`, the `TEMPLATES`
  registry: ``chatml``/``qwen_1_5`` of LongVA, ``vicuna_v1`` of LLaMA-VID, MiniGPT4-Video's
  ``[INST]`` variants) and `render` / `render_parts`.
- `longvid.prompting.prompt`: the `Prompt` value (segments `Text`, `Visual`, `Subtitle`,
  `TimeMark`), `build_video_prompt` (one placeholder for the whole video by default; optional
  per-frame "frame at 12.5 s:" marks and subtitles), and `assemble`, which tokenizes the text
  pieces the way the references' ``tokenizer_image_token`` does, splices the visual rows in and
  gives ``inputs_embeds`` / ``attention_mask`` / ``input_ids`` (-200 at visual rows), raising
  `longvid.errors.ContextOverflowError` or dropping frames (``fit="drop_frames"``,
  `frames_that_fit`) when the prompt does not fit the context.
- `longvid.prompting.tokenizer`: `byte_level_tokenizer`, an offline transformers tokenizer (one
  token per byte plus special tokens, vocabulary under 300) for the tiny test models.
- `longvid.prompting.longva_sequence`: the reference's batched ``-200`` splice
  (``prepare_inputs_labels_for_multimodal``) for the LongVA parity vectors.
- `longvid.prompting.minigpt4video`: MiniGPT4-Video's interleaved frame / ``<Cap>`` subtitle
  prompt (`build_interleaved_prompt`, `describe_layout`), the reference's batched inference and
  training assembly (left / right padding, both truncation rules) and its generation preset.
- `longvid.prompting.budget`: `frames_for_budget`, the frame count that fits a context window.

The submodules are not imported here, so ``import longvid.prompting`` stays cheap.
"""
