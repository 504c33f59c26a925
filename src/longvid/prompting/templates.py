r"""Chat templates as data: the exact strings a reference model was trained to see.

A `ChatTemplate` is a frozen record of strings, not a code path: the one-turn prompt of every
reference is ``system + user_prefix + message + user_suffix + assistant_prefix``, where
``message`` is ``message_format`` with ``{placeholder}`` (where the video goes) and
``{question}`` filled in. `render` writes that string; `render_parts` gives the text before and
after the placeholder, which is what `longvid.prompting.prompt.build_video_prompt` wraps around
the visual tokens.

Registered templates (`TEMPLATES`; an alias is the same object). ``P`` is the placeholder, ``Q``
the question; each string is checked by the tests against the parity READMEs and their JSON
files in ``shared/parity``:

- ``chatml`` (alias ``qwen_1_5``), LongVA's ``conv_templates["qwen_1_5"]`` (longva README §9):
  ``<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n`` then
  ``<|im_start|>user\nP\nQ<|im_end|>\n`` then ``<|im_start|>assistant\n``, stop ``<|im_end|>``.
- ``vicuna_v1`` (aliases ``imgsp_v1``, ``llamavid``), LLaMA-VID eval and movie CLI (llamavid
  README §3): ``A chat between a curious user and an artificial intelligence assistant. The
  assistant gives helpful, detailed, and polite answers to the user's questions. USER: P\nQ
  ASSISTANT:`` (one space before ``USER:`` and ``ASSISTANT:``), stop ``</s>``.
- ``minigpt4video``, MiniGPT4-Video inference (CLI, demo, Goldfish; minigpt4video README §3):
  ``<s>[INST] P\nQ [/INST]``, where ``P`` is ``<Img><ImageHere>`` per frame, each optionally
  followed by a ``<Cap>text `` subtitle; stop ``</s>``.
- ``minigpt4video_eval``: ``<s>[INST]  P\nQ [/INST]`` (two spaces, from ``prepare_texts``).
- ``minigpt4video_train``: ``[INST] P\nQ[/INST]`` (the trainer prepends BOS as an embedding).

LLaVA's ``llava_llama_2`` is not registered: no parity README states its exact string, and a
template that cannot be checked against its reference is worse than none.

BOS is not part of a template: `longvid.prompting.prompt` tokenizes the text pieces the way the
reference's ``tokenizer_image_token`` does (the tokenizer adds BOS to the first piece if it adds
one at all). MiniGPT4-Video's literal ``<s>`` is text of its template, as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from longvid.errors import ConfigError

#: The placeholder a rendered prompt writes where the visual tokens go (LLaVA's ``<image>``).
DEFAULT_PLACEHOLDER = "<image>"


@dataclass(frozen=True)
class ChatTemplate:
    """The strings of one chat format, for a single user turn followed by the answer.

    ``system`` is the whole system block (with its own delimiters, or empty); ``user_prefix``
    and ``user_suffix`` wrap the user message; ``assistant_prefix`` is where the model starts
    writing; ``stop_strings`` end its answer. ``message_format`` lays out the user message from
    ``{placeholder}`` and ``{question}`` (all three references put the video first, then a
    newline, then the question). ``placeholder`` is the reference's own placeholder text
    (shown by `Prompt.render`), ``frame_prefix`` the text the reference writes before each
    frame's tokens (MiniGPT4-Video's ``<Img>``), ``per_frame`` whether the reference gives each
    frame its own placeholder (True) or puts the whole video at one placeholder (LongVA, LLaMA-VID
    short video), and ``subtitle_format`` how a subtitle line is written (``{text}``).
    """

    name: str
    system: str
    user_prefix: str
    user_suffix: str
    assistant_prefix: str
    stop_strings: tuple[str, ...]
    message_format: str = "{placeholder}\n{question}"
    placeholder: str = DEFAULT_PLACEHOLDER
    frame_prefix: str = ""
    per_frame: bool = False
    subtitle_format: str = "subtitle: {text}\n"
    source: str = ""


def _register(
    *templates_and_aliases: tuple[ChatTemplate, tuple[str, ...]],
) -> dict[str, ChatTemplate]:
    table: dict[str, ChatTemplate] = {}
    for template, aliases in templates_and_aliases:
        for name in (template.name, *aliases):
            if name in table:
                raise RuntimeError(f"chat template {name!r} registered twice")
            table[name] = template
    return table


_CHATML = ChatTemplate(
    name="chatml",
    system="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    user_prefix="<|im_start|>user\n",
    user_suffix="<|im_end|>\n",
    assistant_prefix="<|im_start|>assistant\n",
    stop_strings=("<|im_end|>",),
    source="LongVA conv_templates['qwen_1_5'] (shared/parity/longva/README.md §9)",
)

_VICUNA_V1 = ChatTemplate(
    name="vicuna_v1",
    system=(
        "A chat between a curious user and an artificial intelligence assistant. The assistant "
        "gives helpful, detailed, and polite answers to the user's questions."
    ),
    user_prefix=" USER: ",
    user_suffix="",
    assistant_prefix=" ASSISTANT:",
    stop_strings=("</s>",),
    subtitle_format="{text}",
    source="LLaMA-VID vicuna_v1 / imgsp_v1 (shared/parity/llamavid/README.md §3)",
)

_MINIGPT4VIDEO = ChatTemplate(
    name="minigpt4video",
    system="",
    user_prefix="<s>[INST] ",
    user_suffix=" [/INST]",
    assistant_prefix="",
    stop_strings=("</s>",),
    placeholder="<ImageHere>",
    frame_prefix="<Img>",
    per_frame=True,
    subtitle_format="<Cap>{text} ",
    source="MiniGPT4-Video inference_prompt (shared/parity/minigpt4video/README.md §3)",
)

_MINIGPT4VIDEO_EVAL = replace(
    _MINIGPT4VIDEO,
    name="minigpt4video_eval",
    user_prefix="<s>[INST]  ",
    source="MiniGPT4-Video eval_prompt (shared/parity/minigpt4video/README.md §3)",
)

_MINIGPT4VIDEO_TRAIN = replace(
    _MINIGPT4VIDEO,
    name="minigpt4video_train",
    user_prefix="[INST] ",
    user_suffix="[/INST]",
    source="MiniGPT4-Video train_prompt (shared/parity/minigpt4video/README.md §3)",
)

#: Every registered template by name and alias.
TEMPLATES: dict[str, ChatTemplate] = _register(
    (_CHATML, ("qwen_1_5",)),
    (_VICUNA_V1, ("imgsp_v1", "llamavid")),
    (_MINIGPT4VIDEO, ()),
    (_MINIGPT4VIDEO_EVAL, ()),
    (_MINIGPT4VIDEO_TRAIN, ()),
)


def get_template(template: ChatTemplate | str) -> ChatTemplate:
    """The template itself, or the registered one of that name.

    Raises `ConfigError` naming the known templates for an unknown name, so a typo in a
    ``config.json`` ``chat_template`` key fails with the list to choose from.
    """
    if isinstance(template, ChatTemplate):
        return template
    try:
        return TEMPLATES[template]
    except (KeyError, TypeError):
        known = ", ".join(sorted(TEMPLATES))
        raise ConfigError(f"unknown chat template {template!r}; known: {known}") from None


def render_parts(template: ChatTemplate | str, question: str) -> tuple[str, str]:
    """The prompt text before and after the placeholder, for one user turn.

    The question is inserted verbatim (no ``str.format``, so braces in it are safe), and the
    placeholder is not written: callers put visual segments between the two parts.
    """
    t = get_template(template)
    head, sep, tail = t.message_format.partition("{placeholder}")
    if not sep:
        raise ConfigError(f"chat template {t.name!r}: message_format has no {{placeholder}}")
    if "{question}" in head:
        before_q, _, after_q = head.partition("{question}")
        head, tail = before_q + question + after_q, tail
    else:
        tail = tail.replace("{question}", question, 1)
    before = t.system + t.user_prefix + head
    after = tail + t.user_suffix + t.assistant_prefix
    return before, after


def render(
    template: ChatTemplate | str, question: str, placeholder: str = DEFAULT_PLACEHOLDER
) -> str:
    """The whole one-turn prompt string with ``placeholder`` where the video goes.

    With the defaults this is the string the reference builds, e.g. for ``"qwen_1_5"``
    ``"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n<image>\\n
    {question}<|im_end|>\\n<|im_start|>assistant\\n"``.
    """
    before, after = render_parts(template, question)
    return before + placeholder + after
