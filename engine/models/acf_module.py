"""The torch module of ACF: embeddings, the component-level and the item-level attention.

Kept apart from the recommender wrapper (`engine.models.acf.ACF`), which handles ids, profiles,
features, training and saving (after cornac's ``backend_pt.py`` split).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.item_side import ItemSideCache

#: Spread of the initial embeddings and of the initial reduced image components.
EMBEDDING_STD = 0.1
#: Initial weight of the attention prior in α's logit (it is learned from there).
PRIOR_WEIGHT = 1.0


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax over the entries where `mask` is True; masked entries get exactly 0.

    A slice with no unmasked entry gets all zeros (not NaN): a user whose only profile item is
    the positive being scored simply has no profile term.
    """
    logits = logits.masked_fill(~mask, float("-inf"))
    top = logits.amax(dim=dim, keepdim=True).clamp_min(-1e30)  # all -inf -> finite
    weights = torch.exp(logits - top) * mask
    return weights / weights.sum(dim=dim, keepdim=True).clamp_min(1e-30)


# Rows of a table are looked up with `F.embedding`, never ``table[idx]``: the backward of
# advanced indexing accumulates with several CPU threads in a nondeterministic order (two fits
# with one seed differed by up to 0.02 in the item vectors), `F.embedding`'s does not.


class ACFModule(ItemSideCache):
    """ACF's parameters and forward pieces.

    Notation of Chen et al. (2017): user ``u`` (embedding ``u_i``), item ``l`` of the user's
    profile with latent vector ``v_l`` and auxiliary ("context") vector ``p_l``, components
    ``x_lm`` (m = 1..M cells of its image). Component attention
    ``b(u,l,m) = w2ᵀ ReLU(W2u u + W2x x_lm + b2)``, ``β = softmax_m b``, ``x̄_l = Σ_m β x_lm``;
    item attention ``a(u,l) = w1ᵀ ReLU(W1u u + W1v v_l + W1p p_l + W1x x̄_l + b1)``,
    ``α = softmax_l a`` (``softmax_l (a + w c_ul)`` with a `prior` ``c``, our addition); user representation ``u + Σ_l α(u,l) p_l``; score
    ``(u + Σ_l α p_l)ᵀ v_i + b_i``. The item bias ``b_i`` is an addition of ours (popularity).

    With ``content=True`` (our addition, documented in `engine.models.acf.ACF`) the item's
    visual content enters both sides of the score, as in VBPR (He & McAuley 2016): each
    profile item contributes ``E x̄_l`` (its β-attended content) in place of ``p_l``, and each
    candidate is ``v_i + E x̃_i`` with ``x̃_i = mean_m x_im`` (a candidate has no
    user-conditioned β: that would cost users x items x cells per ranking). So β gets gradient
    straight from the loss instead of only through the item attention's output layer, and the
    profile term can only say what the images show (``p_l`` still feeds the item attention).

    Parameters
    ----------
    features : (n_items, M, d) float tensor of component features, or None: then each item has
        one learned "component" (an embedding), so the model runs on datasets without images
        with item-level attention only.
    components_dim : size of the learned linear reduction of the feature dimension (``x_lm``).
    tied : use ``v_l`` as ``p_l`` (one item table instead of two).
    prior : (n_users, P) float tensor or None: a fixed logit per profile entry (the history
        consistency of `engine.models.acf_prior`), added to α's logit times a learned weight
        ``w`` (starting at `PRIOR_WEIGHT`). Rows are users, columns the profile's slots.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int,
        attention_dim: int,
        components_dim: int,
        features: torch.Tensor | None,
        tied: bool,
        content: bool = False,
        prior: torch.Tensor | None = None,
    ):
        super().__init__()
        self.tied = tied
        self.user = nn.Embedding(n_users, factors)
        self.item = nn.Embedding(n_items, factors)
        self.context = None if tied else nn.Embedding(n_items, factors)
        self.item_bias = nn.Embedding(n_items, 1)
        if features is not None:
            # Not a parameter and not saved: the wrapper keeps the features outside checkpoints.
            self.register_buffer("features", features.float(), persistent=False)
            self.reduce = nn.Linear(features.shape[-1], components_dim)
            self.own_component = None
        else:
            self.features = None
            self.reduce = None
            self.own_component = nn.Embedding(n_items, components_dim)
        self.comp_user = nn.Linear(factors, attention_dim)
        self.comp_x = nn.Linear(components_dim, attention_dim, bias=False)
        self.comp_out = nn.Linear(attention_dim, 1)
        self.att_user = nn.Linear(factors, attention_dim)
        self.att_item = nn.Linear(factors, attention_dim, bias=False)
        self.att_context = nn.Linear(factors, attention_dim, bias=False)
        self.att_x = nn.Linear(components_dim, attention_dim, bias=False)
        self.att_out = nn.Linear(attention_dim, 1)
        # E: components -> latent space; only with image features (an own component is an embedding already).
        self.content = nn.Linear(components_dim, factors, bias=False) if content and features is not None else None
        if prior is not None:
            self.register_buffer("prior", prior.float(), persistent=False)
            self.prior_weight = nn.Parameter(torch.tensor(PRIOR_WEIGHT))
        else:
            self.prior = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming (He) initialisation of the ReLU layers; inputs and outputs kept on one scale.

        The attention's hidden layers add a term per input (user, item, context, image), so
        those terms must start on one scale or the largest one decides the attention alone:
        embeddings are N(0, 0.1²) and the feature reduction is scaled to give components of the
        same spread (standardised features through a Kaiming-initialised reduction would be
        about 15x larger, and both attentions would start as functions of the image only,
        the same for every user). The two output layers start at zero, so α and β start
        uniform: a random output layer makes the softmaxes peaked from the first step, and a
        peaked softmax passes almost no gradient to the entries it ignores.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=EMBEDDING_STD)
        nn.init.zeros_(self.item_bias.weight)
        if self.reduce is not None:
            nn.init.normal_(self.reduce.weight, std=EMBEDDING_STD / self.reduce.in_features**0.5)
        for out in (self.comp_out, self.att_out):
            nn.init.zeros_(out.weight)
        if self.content is not None:
            # Content starts small next to the embeddings: it earns its weight from the loss.
            nn.init.normal_(self.content.weight, std=EMBEDDING_STD / self.content.in_features**0.5)

    def context_table(self) -> torch.Tensor:
        return self.item.weight if self.tied else self.context.weight

    def components(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """(n_items, M, components_dim): the reduced features of every item (or of `items`,
        any shape, giving ``items.shape + (M, components_dim)``)."""
        if self.reduce is None:
            table = self.own_component.weight
            return (table if items is None else F.embedding(items, table)).unsqueeze(-2)
        return self.reduce(self.features if items is None else self.features[items])

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Candidate vectors ``v_i`` (+ ``E x̃_i`` with content) of `items` (default all)."""
        v = self.item.weight if items is None else self.item(items)
        if self.content is None:
            return v
        if items is None:
            return v + self.content(self.components().mean(-2))
        # A batch names the same items many times (WARP draws 20 negatives per positive): reduce
        # each distinct item's 49 cells once, not once per mention.
        distinct, where = torch.unique(items, return_inverse=True)
        return v + F.embedding(where, self.content(self.components(distinct).mean(-2)))

    def _item_side(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every candidate's vector and bias: the item half of a full row of scores, which
        with content reduces every item's 49 cells (cached, so once per set of weights)."""
        return self.item_vectors(), self.item_bias.weight[:, 0]

    def attention_logits(self, users: torch.Tensor, profile: torch.Tensor, valid: torch.Tensor):
        """Item-level logits (B, P) and component weights β (B, P, M) of users' profiles.

        `profile` (B, P) holds item indices (any value where `valid` is False).
        """
        items = profile.clamp_min(0)
        x = self.components(items)  # (B, P, M, C): only the profiles' items, not the whole table
        u = self.user(users)  # (B, F)
        hidden = F.relu(self.comp_x(x) + self.comp_user(u)[:, None, None, :])  # (B, P, M, A)
        beta = torch.softmax(self.comp_out(hidden).squeeze(-1), dim=-1)  # (B, P, M)
        x_bar = torch.einsum("bpm,bpmc->bpc", beta, x)  # x̄_l
        context = F.embedding(items, self.context_table())  # (B, P, F)
        hidden = F.relu(
            self.att_user(u)[:, None, :] + self.att_item(self.item(items)) + self.att_context(context) + self.att_x(x_bar)
        )
        logits = self.att_out(hidden).squeeze(-1)
        if self.prior is not None:
            logits = logits + self.prior_weight * F.embedding(users, self.prior)
        if self.content is not None:
            context = self.content(x_bar)  # E x̄_l: what the user sees in the item, in latent space
        return logits, beta, u, context

    def user_vectors(self, users, profile, valid, exclude=None):
        """``u + Σ_l α p_l`` and α.

        With `exclude` (B, S) item indices, returns (B, S, F) vectors and α (B, S, P), the
        profile item equal to ``exclude[:, s]`` masked out for slot s (a training positive
        must not explain itself); without it, (B, F) and (B, P).
        """
        logits, beta, u, context = self.attention_logits(users, profile, valid)
        if exclude is None:
            alpha = masked_softmax(logits, valid)
            return u + torch.einsum("bp,bpf->bf", alpha, context), alpha, beta
        mask = valid[:, None, :] & (profile[:, None, :] != exclude[:, :, None])  # (B, S, P)
        alpha = masked_softmax(logits[:, None, :].expand_as(mask), mask)
        return u[:, None, :] + torch.einsum("bsp,bpf->bsf", alpha, context), alpha, beta

    def item_scores(self, user_vec: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of `items` (shape ``user_vec.shape[:-1] + (K,)`` or equal to it) for user vectors."""
        v = self.item_vectors(items)
        b = self.item_bias(items).squeeze(-1)
        if items.dim() == user_vec.dim():  # one extra axis of candidates
            return torch.einsum("...f,...kf->...k", user_vec, v) + b
        return (user_vec * v).sum(-1) + b
