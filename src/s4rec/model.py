"""SASRec encoder (hidden states only) and the pooling step that turns them into one vector."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import ModelConfig


class Dropout(nn.Module):
    """Inverted dropout whose mask thresholds uniform noise: same distribution as
    ``nn.Dropout``, about 3x faster on CPU, where torch's Bernoulli sampling is slow."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * (torch.rand_like(x) >= self.p) * (1.0 / (1.0 - self.p))


def causal_attention(q: Tensor, k: Tensor, v: Tensor, allowed: Tensor, dropout: Dropout) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v with dropout on the attention weights; (B, h, L, d/h)."""
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, h, L, L)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    return dropout(weights) @ v


def attention_mask(valid: Tensor, causal: bool, iclrec: bool = False) -> Tensor:
    """(B, W, W), True where query i may attend to key j, for ``valid`` (B, W) item positions.

    Query i sees key j if j holds an item or j = i (and j <= i when causal). With ``iclrec``,
    as under the ICLRec code's additive mask: query i sees the items among j (<= i), not
    itself when it is padding; a row that would see nothing (leading padding, and id-0
    masked positions before a view's first item) sees every position, since the mask shifts
    all of its logits by the same -10000, which softmax ignores."""
    W = valid.shape[1]
    cols = torch.arange(W, device=valid.device)
    allowed = valid[:, None, :] if iclrec else valid[:, None, :] | (cols[:, None] == cols)
    if causal:
        allowed = allowed & (cols[:, None] >= cols)
    allowed = allowed.expand(-1, W, -1)  # (B, W, W)
    if iclrec:
        allowed = allowed | ~allowed.any(-1, keepdim=True)
    return allowed


class SelfAttentionBlock(nn.Module):
    """Causal multi-head self-attention then a GELU feed-forward, each with residual + LayerNorm."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.attn_dropout = Dropout(cfg.attn_dropout)
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm1 = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.ff_in = nn.Linear(cfg.hidden, cfg.inner)
        self.ff_out = nn.Linear(cfg.inner, cfg.hidden)
        self.norm2 = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, x: Tensor, allowed: Tensor, last_only: bool = False) -> Tensor:
        """(B, L, d) -> (B, L, d), or (B, 1, d) for the last query only with ``last_only``."""
        B, L, d = x.shape  # allowed: (B, 1, L, L) True where query may attend to key
        if last_only:  # keys and values still come from every position
            w, b = self.qkv.weight, self.qkv.bias
            q = F.linear(x[:, -1:], w[:d], b[:d]).view(B, 1, self.heads, -1).transpose(1, 2)
            kv = F.linear(x, w[d:], b[d:]).view(B, L, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
            k, v = kv
            x, allowed, L = x[:, -1:], allowed[:, :, -1:], 1
        else:
            qkv = self.qkv(x).view(B, L, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv
        a = causal_attention(q, k, v, allowed, self.attn_dropout).transpose(1, 2).reshape(B, L, d)
        x = self.norm1(x + self.dropout(self.proj(a)))
        ff = self.ff_out(F.gelu(self.ff_in(x)))
        return self.norm2(x + self.dropout(ff))


class SequenceEncoder(nn.Module):
    """What trainer, objectives and evaluator need of an encoder: an item table whose rows
    score hidden states by dot product, and ``forward(items, last_only, users)`` giving a
    hidden state per position of left-padded item ids (B, W) -> (B, W, d), or (B, 1, d).
    ``users`` (B,) is given wherever the users are known; only user-embedding models use it.
    Encoders that read their input through ``item_emb`` (``embeds_items``) also take those
    rows ready-made, ``embedded`` (B, W, d), as Hugging Face models take ``inputs_embeds``;
    the others ignore it."""

    n_items: int
    max_len: int
    item_emb: nn.Embedding
    reads_padding = False  # whether poolings read padding positions (model.padding=iclrec)
    embeds_items = False  # whether forward takes ``embedded``: the item_emb rows of ``items``

    @property
    def mask_id(self) -> int:
        return self.n_items + 1

    def score(self, hidden: Tensor, items: Tensor | None = None) -> Tensor:
        """Dot-product scores of hidden states (..., d) with all items, ids (...,) or ids (..., n)."""
        if items is None:
            return hidden @ self.item_emb.weight.T
        emb = self.item_emb(items)
        if emb.dim() > hidden.dim():
            hidden = hidden.unsqueeze(-2)
        return (hidden * emb).sum(-1)

    def check_width(self, items: Tensor) -> None:
        if self.max_len < items.shape[1]:
            raise ValueError(f"sequence width {items.shape[1]} exceeds max_len {self.max_len}")


class SASRec(SequenceEncoder):
    """Self-attentive sequential encoder (Kang & McAuley, ICDM'18), as used by ICLRec and S^4Rec.

    Item 0 is padding and item ``n_items + 1`` the mask token used by augmentations.
    Inputs are left-padded; position ids count from the last item (``positions="end"``,
    the ICLRec convention) or from the first real item (``"start"``), which makes the
    output at position t depend only on items 1..t, so one pass trains every prefix.
    """

    causal = True  # each position attends to itself and earlier items only
    embeds_items = True

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden size {cfg.hidden} is not divisible by {cfg.heads} heads")
        self.cfg = cfg
        self.n_items = n_items
        self.max_len = max_len
        self.reads_padding = cfg.padding == "iclrec"
        self.item_emb = nn.Embedding(n_items + 2, cfg.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(SelfAttentionBlock(cfg) for _ in range(cfg.layers))
        self.apply(_init_weights)

    def position_ids(self, items: Tensor) -> Tensor:
        """(B, W) position ids of a left-padded batch trimmed to width W <= max_len."""
        B, W = items.shape
        cols = torch.arange(W, device=items.device)
        if self.cfg.positions == "end":
            return (cols + self.max_len - W).expand(B, W)
        lengths = (items != 0).sum(1, keepdim=True)
        return (cols - (W - lengths)).clamp(min=0)

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, W, d) of left-padded item ids (B, W); padding rows are meaningless.

        ``last_only`` returns (B, 1, d), the last position only, and skips the other
        positions' queries and feed-forward in the top block (same values, less work).
        """
        self.check_width(items)
        valid = items != 0  # (B, W)
        x = self.item_emb(items) if embedded is None else embedded
        x = x + self.pos_emb(self.position_ids(items))
        x = self.dropout(self.norm(x))
        allowed = attention_mask(valid, self.causal, self.reads_padding)[:, None]  # (B, 1, W, W)
        for i, block in enumerate(self.blocks):
            x = block(x, allowed, last_only and i == len(self.blocks) - 1)
        return x


class BERT4Rec(SASRec):
    """Bidirectional self-attentive encoder (Sun et al., CIKM'19): SASRec's blocks without the
    causal mask, trained by predicting masked items from both sides (``MaskedItemObjective``).

    ``forward`` appends the mask token to the history (dropping the oldest item at
    ``max_len``) and returns the states of the last W tokens: the mask's state, last,
    predicts the next item, so evaluation and inference use it like any encoder's.
    """

    causal = False
    embeds_items = False  # its input gains a mask token: it looks its items up itself

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        """(B, W, d), or (B, 1, d): the appended mask token's state, for left-padded ids (B, W)."""
        self.check_width(items)
        mask = torch.full_like(items[:, :1], self.mask_id)
        x = torch.cat([items, mask], 1)[:, -self.max_len :]
        return self.bidirectional(x, last_only)[:, -items.shape[1] :]

    def bidirectional(self, items: Tensor, last_only: bool = False) -> Tensor:
        """States (B, W, d) of the tokens as given, each attending to every item of its row."""
        return super().forward(items, last_only)


class GRU4Rec(SequenceEncoder):
    """Recurrent encoder (Hidasi et al., ICLR'16): item embeddings through a GRU, one hidden
    state per position, scored against the same item table. Padding never enters the GRU:
    rows are packed by length."""

    embeds_items = True

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_items, self.max_len = n_items, max_len
        self.item_emb = nn.Embedding(n_items + 2, cfg.hidden, padding_idx=0)
        self.dropout = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, cfg.layers, batch_first=True)
        nn.init.normal_(self.item_emb.weight, std=0.02)

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, W, d) of left-padded item ids (B, W); padding rows are meaningless."""
        self.check_width(items)
        W = items.shape[1]
        lengths = (items != 0).sum(1)
        pads = W - lengths  # (B,)
        cols = torch.arange(W, device=items.device)
        first = (cols + pads[:, None]).clamp(max=W - 1)  # (B, W) items first, then padding
        x = self.item_emb(items) if embedded is None else embedded
        x = self.dropout(torch.gather(x, 1, first[..., None].expand_as(x)))  # (B, W, d)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=W)
        back = (cols - pads[:, None]).clamp(min=0)  # right-align again, as the input was
        h = self.dropout(torch.gather(out, 1, back[..., None].expand(-1, -1, out.shape[-1])))
        return h[:, -1:] if last_only else h


class Popularity(SequenceEncoder):
    """The popularity floor: every history gets the same hidden state (1,) and the item
    table holds log(1 + training count), so all users see items ranked by popularity
    (their own history excluded, as always). Nothing to train: set the counts with
    ``fit_counts`` and train zero epochs."""

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_items, self.max_len = n_items, max_len
        self.item_emb = nn.Embedding(n_items + 2, 1).requires_grad_(False)
        nn.init.zeros_(self.item_emb.weight)

    def fit_counts(self, counts: Tensor) -> None:
        self.item_emb.weight.copy_(torch.log1p(counts.float())[:, None])

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        self.check_width(items)
        return torch.ones(len(items), 1 if last_only else items.shape[1], 1, device=items.device)


class MatrixFactorization(SequenceEncoder):
    """BPR-MF (Rendle et al., UAI'09): one embedding per user, the same at every position;
    the history itself is ignored, so it can only score users seen in training."""

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig, n_users: int) -> None:
        super().__init__()
        self.n_items, self.max_len = n_items, max_len
        self.item_emb = nn.Embedding(n_items + 2, cfg.hidden, padding_idx=0)
        self.user_emb = nn.Embedding(n_users, cfg.hidden)
        for table in (self.item_emb, self.user_emb):
            nn.init.normal_(table.weight, std=0.02)

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        self.check_width(items)
        if users is None:
            raise ValueError(
                "a matrix-factorisation model scores known users only, not a new history"
            )
        return self.user_emb(users)[:, None].expand(-1, 1 if last_only else items.shape[1], -1)


class Caser(SequenceEncoder):
    """Convolutional encoder (Tang & Wang, WSDM'18): at every position, the embeddings of the
    last L items form an L x d "image"; vertical filters (L x 1) and horizontal filters
    (h x d, h = 1..L, max-pooled over time) read it, a fully connected layer gives z, and
    the hidden state is [z; p_u] with a user embedding p_u, scored against output item
    embeddings of size 2d. Like BPR-MF it scores known users only. Unlike the original
    there is no per-item output bias, so scores stay the dot products every encoder gives."""

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig, n_users: int) -> None:
        super().__init__()
        self.n_items, self.max_len, self.window = n_items, max_len, cfg.window
        d, L = cfg.hidden, cfg.window
        self.input_emb = nn.Embedding(n_items + 2, d, padding_idx=0)
        self.vertical = nn.Conv2d(1, cfg.vertical_filters, (L, 1))
        self.horizontal = nn.ModuleList(
            nn.Conv2d(1, cfg.horizontal_filters, (h, d)) for h in range(1, L + 1)
        )
        self.dropout = Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.vertical_filters * d + cfg.horizontal_filters * L, d)
        self.user_emb = nn.Embedding(n_users, d)
        self.item_emb = nn.Embedding(n_items + 2, 2 * d, padding_idx=0)  # output table W'
        for table in (self.input_emb, self.user_emb, self.item_emb):
            nn.init.normal_(table.weight, std=0.02)
        with torch.no_grad():
            self.input_emb.weight[0].zero_()  # padding inside a window adds nothing

    def forward(
        self,
        items: Tensor,
        last_only: bool = False,
        users: Tensor | None = None,
        embedded: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (B, W, 2d) of left-padded item ids (B, W), or (B, 1, 2d)."""
        self.check_width(items)
        if users is None:
            raise ValueError("Caser adds a user embedding, so it scores known users only")
        L = self.window
        windows = F.pad(items, (L - 1, 0)).unfold(1, L, 1)  # (B, W, L) items up to each position
        if last_only:
            windows = windows[:, -1:]
        B, W, _ = windows.shape
        e = self.input_emb(windows).view(B * W, 1, L, -1)  # (N, 1, L, d)
        vertical = self.vertical(e).flatten(1)  # (N, n_v * d)
        horizontal = [F.relu(conv(e)).squeeze(3).amax(2) for conv in self.horizontal]  # (N, n_h)
        z = F.relu(self.fc(self.dropout(torch.cat([vertical, *horizontal], 1))))  # (N, d)
        user = self.user_emb(users)[:, None].expand(B, W, -1)  # (B, W, d)
        return torch.cat([z.view(B, W, -1), user], -1)


ENCODERS = {"sasrec": SASRec, "bert4rec": BERT4Rec, "gru4rec": GRU4Rec, "pop": Popularity}
USER_ENCODERS = {"mf": MatrixFactorization, "caser": Caser}  # these also need the users


def build_encoder(
    n_items: int, max_len: int, cfg: ModelConfig, n_users: int = 0
) -> SequenceEncoder:
    """The encoder named by ``cfg.encoder`` ("mf" and "caser" need the number of users)."""
    if cfg.encoder in USER_ENCODERS:
        return USER_ENCODERS[cfg.encoder](n_items, max_len, cfg, n_users)
    return ENCODERS[cfg.encoder](n_items, max_len, cfg)


def pool(
    hidden: Tensor,
    items: Tensor,
    how: str = "last",
    width: int | None = None,
    padding: bool = False,
) -> Tensor:
    """Sequence representation: the last position (B, d), the mean over non-padding
    positions (B, d), or "flat": every position's output, zero at padding, left-padded to
    ``width`` positions and concatenated (B, width * d), as the CL4SRec/ICLRec code contrasts.
    ``padding`` counts padding positions as items (``model.padding=iclrec``)."""
    if how == "last":
        return hidden[:, -1]
    valid = torch.ones_like(items, dtype=torch.bool) if padding else items != 0
    valid = valid.unsqueeze(-1).to(hidden.dtype)
    if how == "mean":
        return (hidden * valid).sum(1) / valid.sum(1).clamp(min=1)
    if how == "flat":
        pad = (width or hidden.shape[1]) - hidden.shape[1]
        if pad < 0:
            raise ValueError(f"flat pooling to width {width}: the batch has {hidden.shape[1]}")
        return F.pad(hidden * valid, (0, 0, pad, 0)).flatten(1)
    raise ValueError(f"unknown pooling {how!r}; use 'last', 'mean' or 'flat'")


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: Tensor, scale: float = 1.0) -> Tensor:
    """Gradient reversal (Sec. 4.3): identity forward, ``-scale`` times the gradient backward."""
    return _ReverseGradient.apply(x, scale)


class Prototypes(nn.Module):
    """K trainable intent prototypes mu (K, d) of Sec. 4.1 (compared by cosine similarity)."""

    def __init__(self, k: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(F.normalize(torch.randn(k, dim), dim=1))


class HeadTailClassifier(nn.Module):
    """Linear head/tail classifier W of Eq. 13 behind a gradient reversal layer.

    With ``normalize`` the classifier sees z / ||z||, as the prototypes do: the encoder can
    then not win the adversarial game by inflating ||z|| to make the classifier confidently
    wrong, which otherwise encodes head/tail *more* strongly (docs/reproduction.md).
    """

    def __init__(self, dim: int, normalize: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, 2)
        self.normalize = normalize

    def forward(self, z: Tensor, scale: float = 1.0) -> Tensor:
        """(B, 2) logits; the encoder receives ``-scale`` times the gradient through z."""
        z = reverse_gradient(z, scale)
        return self.linear(F.normalize(z, dim=1) if self.normalize else z)


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases, as in the ICLRec code."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
