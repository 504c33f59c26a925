"""LLaMA-VID: two tokens per frame, a context token guided by the question and a content token.

Paper: Li, Wang and Jia, "LLaMA-VID: An Image is Worth 2 Tokens in Large Language Models"
(ECCV 2024), §3.1 (the architecture: instruction-guided queries from the text decoder,
context attention, token generation) and §3.2 (training, including long-video tuning).
The contract is ``shared/parity/llamavid/README.md`` §0-1.

Per frame with patch features ``V (N, Dv)`` (before any projection) and the question:

1. The instruction-aware Q-Former (`InstructQFormer`: InstructBLIP's BERT with cross-attention
   to the LayerNorm'd frame features every second layer, separate feed-forward paths for the
   learned queries and the text) turns (question, frame) into ``Q`` outputs, and
   ``vlm_att_projector`` maps them to text queries ``text_q (Q, Dv)``.
2. **Context token**: ``A = softmax_patches(text_q @ key_projector(V)^T / sqrt(Dv))`` (one head,
   scaled by the *feature* width), ``ctx = mean_queries(A @ V)`` (values are the raw
   features), then ``vlm_att_val_projector(ctx)``: one token of width ``H``.
3. **Content token**: the mean of the patches (``compress_type="mean"``; ``"grid:g"`` pools
   the patch grid to ``g x g`` for images and short video; ``None`` keeps every patch) through
   the model's two-layer GELU projector (``mm_projector``).
4. Per frame: ``[context, content...]``; frames in time order.

**MiniLM text queries** (``text_encoder="minilm"``, longvid-mini): the frozen MiniLM
(`longvid.encoders.minilm`) encodes the question once; its token states (padding masked out)
through the learned ``text_query_projector`` (Linear ``384 -> Dv``) are the text queries of
step 2, which then runs as above (masked mean over the real queries), and step 3 is unchanged.
The queries do not see the frame, so this is LLaMA-VID's context attention with MiniLM in place
of the instruction-aware Q-Former: no BERT / Q-Former weights are built, and MiniLM's weights
are shared through `get_minilm`, never saved with the model.

The module names (``vlm_att_encoder.bert...``, ``vlm_att_query``, ``vlm_att_ln``,
``vlm_att_projector``, ``vlm_att_key_projector``, ``vlm_att_val_projector``) are the released
checkpoint's (README §0), so `longvid.models.llamavid_checkpoint` maps ``model.vlm_att_*`` to
``compressor.vlm_att_*`` one to one.

Video vs long video (movie): the Q-Former of the image / short-video path sees every feature
token *including CLS*; in the long-video path CLS is stripped before anything sees it (the
reference pre-extracts features and drops CLS at load time). ``long_video=True`` selects the
latter; it is what the released long-video model was fine-tuned with. Frames always run in
blocks of ``block_size`` (64) rows, which gives the same numbers as one pass (README §1.2) and
keeps an hour of video in bounded memory.

``CompressedVideo.relevance`` is, per frame, **the share of the question's attention that the
frame would receive if each text query's softmax ran over the patches of all frames at once**:
with ``S[t, q, n]`` the context-attention scores above,
``relevance[t] = mean_q softmax_t(logsumexp_n S[t, q, n])``. It sums to 1 over the frames and
is computed from the very scores of step 2 (no extra pass); a frame whose patches match the
question's queries better than the others' gets more of it.

Reference defects (README §1-2, §6) concerning this module:

================================  ===================================  =========================
defect                            faithful option                      default
================================  ===================================  =========================
token generation drops the first  ``patch_drop="llamavid-odd"``        ``"cls"``: drop the first
feature token iff the count is                                         token only when it is the
odd (a pre-stripped 3x3 grid                                           CLS (count = side² + 1)
loses a real patch)
``grid:g`` pools with kernel      ``grid_pooling="llamavid"``          ``"exact"``: adaptive
``side // g`` (7x7 with grid:2                                         pooling to exactly g x g
gives 2x2 dropping a row and a
column; 8x8 with grid:3 gives 4x4)
eval casts the Q-Former and the   not reproduced (dtype is the         the model's dtype
projectors to float16             caller's: ``model.to(torch.half)``)
================================  ===================================  =========================

The sequence-assembly defects are in `longvid.prompting.llamavid_sequence`, the prompt and
subtitle ones in `longvid.prompting.llamavid_prompts`, the checkpoint-loading one in
`longvid.models.llamavid_checkpoint`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from longvid.compressors.registry import CompressedVideo, Compressor, ModelDims
from longvid.errors import ConfigError

__all__ = [
    "BERT_BASE_QFORMER",
    "TINY_BERT_VOCAB",
    "InstructQFormer",
    "LlamaVidCompressor",
    "LlamaVidConfig",
    "QFormerConfig",
    "TokenGeneration",
    "bert_tokenizer",
    "frame_relevance",
    "pool_content",
    "token_generation",
]

PatchDrop = Literal["cls", "llamavid-odd"]
TextEncoder = Literal["qformer", "minilm"]
GridPooling = Literal["exact", "llamavid"]

#: The tiny WordPiece vocabulary of the parity vectors (README §0, ``bert_vocab``), id order,
#: without the added ``[DEC]``; the offline tokenizer of ``tiny-llamavid``.
TINY_BERT_VOCAB: tuple[str, ...] = (
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "##ed", "##ing", "##s", ",", ".", "?", "a",
    "after", "and", "are", "away", "big", "bird", "car", "cat", "clip", "color", "cry",
    "describe", "did", "does", "dog", "doing", "door", "from", "girl", "happen", "how", "in",
    "is", "it", "jump", "man", "many", "of", "open", "or", "people", "red", "run", "scene",
    "see", "smil", "street", "summarize", "the", "there", "to", "truck", "video", "what",
    "where", "who", "why", "window", "woman",
)  # fmt: skip


@dataclass(frozen=True)
class QFormerConfig:
    """The Q-Former's BERT shape (bert-base by default, as InstructBLIP's Q-Former).

    ``vocab_size`` counts the added ``[DEC]`` token (bert-base-uncased: 30522 + 1).
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    vocab_size: int = 30523
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    cross_attention_freq: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int",) and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"llamavid qformer.{f.name}: expected an int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"llamavid qformer: hidden_size {self.hidden_size} is not a multiple of "
                f"num_attention_heads {self.num_attention_heads}"
            )
        if self.cross_attention_freq < 1:
            raise ConfigError("llamavid qformer.cross_attention_freq must be >= 1")

    def bert_config(self) -> Any:
        """A transformers ``BertConfig`` for the transformers BERT pieces used here."""
        from transformers import BertConfig

        return BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            hidden_act="gelu",  # exact erf
            max_position_embeddings=self.max_position_embeddings,
            layer_norm_eps=self.layer_norm_eps,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
        )


BERT_BASE_QFORMER = QFormerConfig()


@dataclass(frozen=True)
class LlamaVidConfig:
    """``compressor.params`` of ``llamavid`` (checked here; see the module docstring).

    ``compress_type``: ``"mean"`` (released video models: 2 tokens per frame), ``"grid:g"``
    (``1 + g*g`` per frame) or None (``1 + N``). ``bert_tokenizer``: ``"tiny"`` (the offline
    parity vocabulary) or a local folder / ``vocab.txt`` of bert-base-uncased; never
    downloaded. ``text_encoder``: ``"qformer"`` (the paper's) or ``"minilm"`` (frozen MiniLM
    token states as text queries; ``qformer``, ``bert_tokenizer`` and ``bert_max_length`` are
    then unused); ``minilm_path``: another sentence-transformers BERT folder (None: the
    installed all-MiniLM-L6-v2).
    """

    num_query: int = 32
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    compress_type: str | None = "mean"
    long_video: bool = False
    patch_drop: PatchDrop = "cls"
    grid_pooling: GridPooling = "exact"
    block_size: int = 64
    bert_tokenizer: str = "tiny"
    bert_max_length: int = 256
    ln_eps: float = 1e-5
    text_encoder: TextEncoder = "qformer"
    minilm_path: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.qformer, Mapping):
            try:
                object.__setattr__(self, "qformer", QFormerConfig(**self.qformer))
            except TypeError as exc:
                raise ConfigError(f"compressor 'llamavid' qformer: {exc}") from None
        if isinstance(self.num_query, bool) or not isinstance(self.num_query, int):
            raise ConfigError(f"llamavid num_query: expected an int, got {self.num_query!r}")
        if self.num_query < 1 or self.block_size < 1:
            raise ConfigError("llamavid num_query and block_size must be >= 1")
        _grid_size(self.compress_type)
        if self.patch_drop not in ("cls", "llamavid-odd"):
            raise ConfigError(
                f"llamavid patch_drop: 'cls' or 'llamavid-odd', got {self.patch_drop!r}"
            )
        if self.grid_pooling not in ("exact", "llamavid"):
            raise ConfigError(
                f"llamavid grid_pooling: 'exact' or 'llamavid', got {self.grid_pooling!r}"
            )
        if not isinstance(self.long_video, bool):
            raise ConfigError(f"llamavid long_video: expected a bool, got {self.long_video!r}")
        if self.text_encoder not in ("qformer", "minilm"):
            raise ConfigError(
                f"llamavid text_encoder: 'qformer' or 'minilm', got {self.text_encoder!r}"
            )


def _grid_size(compress_type: str | None) -> int | None:
    """``g`` of ``"grid:g"``; None for ``"mean"`` / no pooling. Checks the string."""
    if compress_type is None:
        return None
    if not isinstance(compress_type, str):
        raise ConfigError(
            f"llamavid compress_type: expected a string or null, got {compress_type!r}"
        )
    if "grid" in compress_type:
        try:
            g = int(compress_type.split("grid:")[-1])
        except ValueError:
            raise ConfigError(
                f"llamavid compress_type {compress_type!r}: expected 'grid:<g>'"
            ) from None
        if g <= 1:
            raise ConfigError(f"llamavid compress_type {compress_type!r}: g must be > 1")
        return g
    if "mean" in compress_type:
        return None
    raise ConfigError(
        f"llamavid compress_type {compress_type!r}: expected 'mean', 'grid:<g>' or null"
    )


# --------------------------------------------------------------------------------------------
# The instruction-aware Q-Former


class _Attention(nn.Module):
    """BERT multi-head attention (``query``/``key``/``value``), keys/values of any width."""

    def __init__(self, width: int, heads: int, kv_width: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(kv_width, width)
        self.value = nn.Linear(kv_width, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor, additive_mask: Tensor | None = None) -> Tensor:
        batch, lq, width = x.shape
        lk = context.shape[1]
        hd = width // self.heads
        q = self.query(x).view(batch, lq, self.heads, hd).transpose(1, 2)
        k = self.key(context).view(batch, lk, self.heads, hd).transpose(1, 2)
        v = self.value(context).view(batch, lk, self.heads, hd).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
        if additive_mask is not None:
            scores = scores + additive_mask
        probs = self.dropout(scores.softmax(dim=-1))
        return torch.matmul(probs, v).transpose(1, 2).reshape(batch, lq, width)


class _AttentionBlock(nn.Module):
    """``self`` (the attention), then ``output``: transformers' ``BertSelfOutput`` (dense,
    residual, post-LN)."""

    def __init__(self, config: QFormerConfig, kv_width: int) -> None:
        super().__init__()
        from transformers.models.bert.modeling_bert import BertSelfOutput

        self.self = _Attention(
            config.hidden_size,
            config.num_attention_heads,
            kv_width,
            config.attention_probs_dropout_prob,
        )
        self.output = BertSelfOutput(config.bert_config())

    def forward(self, x: Tensor, context: Tensor, additive_mask: Tensor | None = None) -> Tensor:
        return self.output(self.self(x, context, additive_mask), x)


class _QFormerLayer(nn.Module):
    """One InstructBLIP Q-Former layer: self-attention over [queries; text], cross-attention
    of the queries to the image (when ``has_cross``), separate feed-forwards per row group."""

    def __init__(self, config: QFormerConfig, encoder_width: int, has_cross: bool) -> None:
        super().__init__()
        from transformers.models.bert.modeling_bert import BertIntermediate, BertOutput

        bert = config.bert_config()
        self.attention = _AttentionBlock(config, config.hidden_size)
        if has_cross:
            self.crossattention = _AttentionBlock(config, encoder_width)
        self.has_cross = has_cross
        self.intermediate = BertIntermediate(bert)
        self.output = BertOutput(bert)
        self.intermediate_query = BertIntermediate(bert)
        self.output_query = BertOutput(bert)

    def forward(self, x: Tensor, image: Tensor, mask: Tensor, n_query: int) -> Tensor:
        x = self.attention(x, x, mask)
        queries, text = x[:, :n_query], x[:, n_query:]
        if self.has_cross:
            queries = self.crossattention(queries, image)
        queries = self.output_query(self.intermediate_query(queries), queries)
        if text.shape[1]:
            text = self.output(self.intermediate(text), text)
        return torch.cat([queries, text], dim=1)


class _Embeddings(nn.Module):
    """Word + absolute position embeddings of the text; the learned queries are prepended
    (without positions) and everything is LayerNorm'd. No token-type embedding (as LAVIS)."""

    def __init__(self, config: QFormerConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, queries: Tensor) -> Tensor:
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device)
        text = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        x = torch.cat([queries.to(text.dtype), text], dim=1)
        return self.dropout(self.LayerNorm(x))


class _Encoder(nn.Module):
    def __init__(self, config: QFormerConfig, encoder_width: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(
            _QFormerLayer(config, encoder_width, i % config.cross_attention_freq == 0)
            for i in range(config.num_hidden_layers)
        )


class _Bert(nn.Module):
    def __init__(self, config: QFormerConfig, encoder_width: int) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config, encoder_width)


class InstructQFormer(nn.Module):
    """The instruction-aware Q-Former (InstructBLIP; README §1.3), key names under ``bert.``.

    ``forward(queries (B, Q, Dq), input_ids (B, Lt), attention_mask (B, Lt), image (B, L, Dv))``
    returns the query rows of the last layer, ``(B, Q, Dq)``. ``image`` must already be
    LayerNorm'd (``vlm_att_ln``). The text mask is bidirectional (queries see the text and the
    text sees the queries), added as ``-10000 * (1 - mask)``.

    transformers' ``BertSelfOutput``, ``BertIntermediate`` and ``BertOutput`` are used as they
    are; the attention is written here because the cross-attention keys/values read the
    visual width ``Dv`` (``encoder_width``) and only the query rows are cross-attended, which
    transformers' ``BertLayer`` does not do.
    """

    def __init__(self, config: QFormerConfig, encoder_width: int) -> None:
        super().__init__()
        self.config = config
        self.bert = _Bert(config, encoder_width)

    def forward(
        self, queries: Tensor, input_ids: Tensor, attention_mask: Tensor, image: Tensor
    ) -> Tensor:
        n_query = queries.shape[1]
        x = self.bert.embeddings(input_ids, queries)
        keep = torch.cat(
            [attention_mask.new_ones(attention_mask.shape[0], n_query), attention_mask], dim=1
        ).to(x.dtype)
        additive = ((1.0 - keep) * -10000.0)[:, None, None, :]
        for layer in self.bert.encoder.layer:
            x = layer(x, image, additive, n_query)
        return x[:, :n_query]


def bert_tokenizer(source: str = "tiny", max_length: int = 256) -> Any:
    """The Q-Former's BERT tokenizer, offline, truncating on the **left** (README §1.3).

    ``"tiny"``: the parity vocabulary (`TINY_BERT_VOCAB`, ``[DEC]`` added after it). Else a
    local folder holding bert-base-uncased's tokenizer files, or its ``vocab.txt``; a relative
    name that does not exist here is looked up in ``cache_dir("models")`` (so
    ``"bert-base-uncased"`` means ``$LONGVID_CACHE/models/bert-base-uncased``). Nothing is
    downloaded (`ConfigError` when the files are missing).
    """
    from transformers import BertTokenizer

    common = {"truncation_side": "left", "model_max_length": max_length}
    if source == "tiny":
        tok = BertTokenizer(vocab={w: i for i, w in enumerate(TINY_BERT_VOCAB)}, **common)
    else:
        path = Path(source).expanduser()
        if not path.exists() and not path.is_absolute():
            from longvid.cache import cache_dir

            path = cache_dir("models", create=False) / source
        try:
            if path.is_file():
                tok = BertTokenizer(vocab=str(path), **common)
            else:
                tok = BertTokenizer.from_pretrained(str(path), local_files_only=True, **common)
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"cannot load the Q-Former's BERT tokenizer (a local bert-base-uncased folder "
                f"or vocab.txt is needed; nothing is downloaded): {err}",
                path,
            ) from None
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


# --------------------------------------------------------------------------------------------
# Token generation


class TokenGeneration(NamedTuple):
    """`token_generation`'s output and intermediates (the parity file's names)."""

    key_proj_out: Tensor  # (B, N, Dv)
    attn: Tensor  # (B, Q, N), softmax over patches
    ctx_pooled: Tensor  # (B, Dv)
    content_pooled: Tensor  # (B, n, Dv)
    output: Tensor  # (B, 1 + n, H), context token first
    scores: Tensor  # (B, Q, N), pre-softmax


def pool_content(
    patches: Tensor, compress_type: str | None, grid_pooling: GridPooling = "exact"
) -> Tensor:
    """Pool ``(B, N, Dv)`` patch features for the content token(s) (README §1.2 step 6).

    ``"mean"``: ``(B, 1, Dv)``. ``"grid:g"``: the ``sqrt(N) x sqrt(N)`` row-major grid average-
    pooled to ``g x g`` (``grid_pooling="exact"``, adaptive windows) or, faithfully, with kernel
    and stride ``side // g`` in floor mode (``"llamavid"``), flattened row-major. None: as is.
    """
    g = _grid_size(compress_type)
    if g is None:
        if compress_type is None:
            return patches
        return patches.mean(dim=1, keepdim=True)
    batch, n, dim = patches.shape
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"grid pooling needs a square patch grid, got {n} patches")
    if side < g:
        raise ValueError(f"a {side}x{side} patch grid cannot be pooled to {g}x{g}")
    grid = patches.reshape(batch, side, side, dim).permute(0, 3, 1, 2).contiguous()
    if grid_pooling == "llamavid":
        stride = side // g
        pooled = F.avg_pool2d(grid, kernel_size=stride, stride=stride)
    else:
        pooled = F.adaptive_avg_pool2d(grid, g)
    return pooled.flatten(2).transpose(1, 2)


def token_generation(
    text_q: Tensor,
    patches: Tensor,
    *,
    key_projector: nn.Module,
    val_projector: nn.Module,
    content_projector: Any,
    compress_type: str | None = "mean",
    grid_pooling: GridPooling = "exact",
    query_mask: Tensor | None = None,
) -> TokenGeneration:
    """Context and content tokens of B (query set, frame) pairs (README §1.2).

    ``text_q (B, Q, Dv)``, ``patches (B, N, Dv)`` (no CLS). Single-head attention scaled by
    ``1/sqrt(Dv)``, softmax over patches, values = the raw patches, mean over queries, then
    ``val_projector``; content through ``content_projector`` (the model's ``mm_projector``).
    ``query_mask (B, Q)``: 1 for real queries (the mean runs over those only); None: all.
    """
    keys = key_projector(patches)
    scores = torch.matmul(text_q, keys.transpose(-1, -2)) / math.sqrt(patches.shape[-1])
    attn = scores.softmax(dim=-1)
    if query_mask is None:
        ctx = torch.matmul(attn, patches).mean(dim=1)
    else:
        keep = query_mask.to(patches.dtype)[..., None]
        ctx = (torch.matmul(attn, patches) * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
    context = val_projector(ctx)[:, None]
    pooled = pool_content(patches, compress_type, grid_pooling)
    content = content_projector(pooled)
    output = torch.cat([context, content.to(context.dtype)], dim=1)
    return TokenGeneration(keys, attn, ctx, pooled, output, scores)


def frame_relevance(scores: Tensor, query_mask: Tensor | None = None) -> Tensor:
    """Per-frame relevance from context-attention scores ``(T, Q, N)``: each query's share of
    a softmax over all ``T*N`` patches, summed per frame and averaged over queries ``(T,)``
    (over the real ones only when ``query_mask (Q,)`` is given)."""
    per_frame = torch.logsumexp(scores.float(), dim=-1)  # (T, Q)
    if query_mask is None:
        return per_frame.softmax(dim=0).mean(dim=1)
    keep = query_mask.to(per_frame.device, per_frame.dtype)
    return (per_frame.softmax(dim=0) * keep).sum(dim=1) / keep.sum().clamp_min(1.0)


# --------------------------------------------------------------------------------------------
# The compressor


class FrameTokens(NamedTuple):
    """`LlamaVidCompressor.frame_tokens` for ``P`` prompts over ``T`` frames (prompt-major).

    With MiniLM queries, ``qformer_output`` holds the MiniLM token states ``(P*T, Lt, 384)``
    and ``query_mask (P*T, Lt)`` marks the real ones (None with the Q-Former: all are real)."""

    qformer_output: Tensor  # (P*T, Q, Dq)
    text_q: Tensor  # (P*T, Q, Dv)
    tokens: Tensor  # (P, T*(1+n), H)
    scores: Tensor  # (P*T, Q, N) context-attention scores
    tokens_per_frame: int
    query_mask: Tensor | None = None


class LlamaVidCompressor(Compressor):
    """``llamavid``: ``[context, content]`` per frame (2 tokens with ``compress_type="mean"``).

    Owns the Q-Former and the attention projections (saved with the model); the content
    projection is the model's projector (``mm_projector``). Needs the question. With
    ``text_encoder="minilm"`` it owns ``text_query_projector`` instead of the Q-Former and reads
    the shared frozen MiniLM through `get_minilm` (not a submodule, not saved).
    """

    name = "llamavid"

    def __init__(self, dims: ModelDims, config: LlamaVidConfig | None = None) -> None:
        super().__init__(dims)
        self.config = config or LlamaVidConfig()
        q = self.config.qformer
        dv, h = dims.vision_width, dims.text_width
        if self.config.text_encoder == "minilm":
            from longvid.encoders.minilm import minilm_width

            self.text_query_projector = nn.Linear(minilm_width(self.config.minilm_path), dv)
        else:
            self.vlm_att_encoder = InstructQFormer(q, dv)
            self.vlm_att_query = nn.Parameter(torch.zeros(1, self.config.num_query, q.hidden_size))
            nn.init.normal_(self.vlm_att_query, std=0.02)
            self.vlm_att_ln = nn.LayerNorm(dv, eps=self.config.ln_eps)
            self.vlm_att_projector = nn.Linear(q.hidden_size, dv)
        self.vlm_att_key_projector = nn.Linear(dv, dv)
        self.vlm_att_val_projector = nn.Linear(dv, h)
        self._tokenizer: Any = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], dims: ModelDims) -> LlamaVidCompressor:
        """From ``compressor.params`` of a model config (fields of `LlamaVidConfig`)."""
        try:
            return cls(dims, LlamaVidConfig(**params))
        except TypeError as exc:
            raise ConfigError(f"compressor 'llamavid': {exc}") from None

    # -- pieces ------------------------------------------------------------------------------

    @property
    def minilm(self) -> Any:
        """The shared frozen `longvid.encoders.minilm.MiniLM` (``text_encoder="minilm"``)."""
        from longvid.encoders.minilm import get_minilm

        return get_minilm(self.config.minilm_path)

    @property
    def tokenizer(self) -> Any:
        """The Q-Former's BERT tokenizer (built on first use from ``config.bert_tokenizer``);
        MiniLM's with ``text_encoder="minilm"``."""
        if self._tokenizer is None and self.config.text_encoder == "minilm":
            return self.minilm.tokenizer
        if self._tokenizer is None:
            self._tokenizer = bert_tokenizer(
                self.config.bert_tokenizer, self.config.bert_max_length
            )
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._tokenizer = value

    def tokenize(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """BERT ids and mask of one sample's prompts (``padding='longest'``, left truncation
        to ``bert_max_length``), as the reference tokenizes them; MiniLM's ids and mask with
        ``text_encoder="minilm"``."""
        if self.config.text_encoder == "minilm":
            ids, mask = self.minilm.tokenize(list(prompts))
            return ids.cpu(), mask.cpu()
        out = self.tokenizer(
            list(prompts),
            padding="longest",
            truncation=True,
            max_length=self.config.bert_max_length,
            return_tensors="pt",
        )
        ids = out["input_ids"]
        rows = self.config.qformer.vocab_size
        if ids.numel() and int(ids.max()) >= rows:
            raise ConfigError(
                f"llamavid: the BERT tokenizer ({self.config.bert_tokenizer!r}) gives id "
                f"{int(ids.max())} but the Q-Former has {rows} word embeddings"
            )
        return ids, out["attention_mask"]

    def text_queries(
        self, features: Tensor, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Q-Former outputs ``(B, Q, Dq)`` and text queries ``(B, Q, Dv)`` of B pairs. With
        MiniLM: its token states ``(B, Lt, 384)`` and their projections (``features`` unused;
        ``attention_mask`` marks the real queries)."""
        if self.config.text_encoder == "minilm":
            weight = self.text_query_projector.weight
            states = self.minilm.states(input_ids, attention_mask).to(weight.device, weight.dtype)
            return states, self.text_query_projector(states)
        image = self.vlm_att_ln(features)
        queries = self.vlm_att_query.expand(features.shape[0], -1, -1)
        out = self.vlm_att_encoder(queries, input_ids, attention_mask, image)
        return out, self.vlm_att_projector(out)

    def _token_patches(self, features: Tensor) -> Tensor:
        """The patches used for token generation: CLS dropped (see ``patch_drop``)."""
        count = features.shape[1]
        if self.config.patch_drop == "llamavid-odd":
            drop = count % 2 == 1
        else:
            drop = count == self.dims.patches_per_side**2 + 1
        return features[:, 1:] if drop else features

    def frame_tokens(
        self,
        features: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor,
        projector: Any,
        *,
        keep_intermediates: bool = True,
    ) -> FrameTokens:
        """The reference's ``vlm_attention`` for one sample (README §1.4).

        ``features (T, L, Dv)``: what the Q-Former sees (all L tokens); ``input_ids`` /
        ``attention_mask (P, Lt)``: the sample's P prompts. Pairs are prompt-major (row
        ``i*T + t``) and run ``block_size`` rows at a time. Returns per prompt the tokens of
        every frame in time order, ``[context, content...]`` each. ``keep_intermediates=False``
        leaves ``qformer_output`` and ``text_q`` empty (an hour of frames at bert-base size
        would otherwise hold about 1 GB of them).
        """
        frames = features.shape[0]
        if frames == 0 or input_ids.shape[0] == 0:
            raise ValueError("llamavid: no frames (or no prompts) to make tokens from")
        prompts = input_ids.shape[0]
        block = self.config.block_size
        outs, tqs, toks, scores = [], [], [], []
        patches_all = self._token_patches(features)
        minilm = self.config.text_encoder == "minilm"
        if minilm:  # the queries do not depend on the frame: encode each prompt once
            all_states, all_text_q = self.text_queries(features, input_ids, attention_mask)
            all_mask = attention_mask.to(features.device)
        rows = prompts * frames  # row r = prompt r // T with frame r % T (prompt-major)
        for start in range(0, rows, block):
            r = torch.arange(start, min(start + block, rows))
            prompt_of, frame_of = r // frames, r % frames
            feats = features[frame_of]
            if minilm:
                out, text_q = all_states[prompt_of], all_text_q[prompt_of]
                query_mask = all_mask[prompt_of]
            else:
                ids = input_ids[prompt_of].to(feats.device)
                mask = attention_mask[prompt_of].to(feats.device)
                out, text_q = self.text_queries(feats, ids, mask)
                query_mask = None
            gen = token_generation(
                text_q,
                patches_all[frame_of],
                key_projector=self.vlm_att_key_projector,
                val_projector=self.vlm_att_val_projector,
                content_projector=projector,
                compress_type=self.config.compress_type,
                grid_pooling=self.config.grid_pooling,
                query_mask=query_mask,
            )
            if keep_intermediates:
                outs.append(out)
                tqs.append(text_q)
            toks.append(gen.output)
            scores.append(gen.scores)
        tokens = torch.cat(toks)  # (P*T, 1+n, H)
        per_frame = tokens.shape[1]
        return FrameTokens(
            torch.cat(outs) if outs else features.new_zeros(0),
            torch.cat(tqs) if tqs else features.new_zeros(0),
            tokens.reshape(prompts, frames * per_frame, -1),
            torch.cat(scores),
            per_frame,
            all_mask[torch.arange(rows) // frames] if minilm else None,
        )

    def forward(
        self,
        features: Tensor,
        *,
        projector: Any,
        frame_times: np.ndarray | Tensor,
        question: str | None = None,
    ) -> CompressedVideo:
        """``(T, P, Dv)`` features -> ``T * (1 + n)`` tokens; ``question`` guides the context
        token (None: an empty prompt, ``[CLS] [SEP]``). Relevance: see the module docstring."""
        if features.ndim != 3:
            raise ValueError(f"expected (T, P, Dv) features, got {tuple(features.shape)}")
        weight = self.vlm_att_key_projector.weight
        features = features.to(weight.device, weight.dtype)
        if self.config.long_video and features.shape[1] == self.dims.patches_per_side**2 + 1:
            features = features[:, 1:]  # the movie path: CLS stripped before anything sees it
        ids, mask = self.tokenize([question or ""])
        result = self.frame_tokens(features, ids, mask, projector, keep_intermediates=False)
        query_mask = None if result.query_mask is None else result.query_mask[0]
        frames = features.shape[0]
        per_frame = result.tokens_per_frame
        frame_of_token = torch.arange(frames).repeat_interleave(per_frame)
        times = torch.as_tensor(np.asarray(frame_times, dtype=np.float64))[frame_of_token]
        return CompressedVideo(
            result.tokens[0],
            frame_of_token,
            times,
            [per_frame] * frames,
            frame_relevance(result.scores, query_mask),
        )
