"""A model that takes the preference vector w as an input (docs/DESIGN.md, "Conditioned
training"; COSMOS, Ruchte & Grabocka 2021; Pareto HyperNetworks, Navon et al. 2021).

:class:`ConditionedModel` wraps one registered family. The preference w (K numbers on the
simplex, one per objective) enters as K numeric features appended after the user/context
features, and the family decides what its feature path does with them through one
classmethod, its hook:

    preference_input(params) -> (hyper-parameters to build with, keep user features?)

- ``harmonrank``: w joins the personalized features P that drive the cross-attention
  query (eq. 14, q_p = [P, w] W^Q_p; with ``personalized: false`` the query is a map of w
  alone), and scales each objective's score token by exp((w W_w)_k), which the query
  alone cannot do (see ``trainables.models.harmonrank``);
- ``mlp``: w joins the MLP's input;
- ``fusion``: w joins the personalized weights, so the exponents become w_0 + W [f, w], a
  learned preference-to-exponent map (with ``personalized: false``: w_0 + W w);
- ``emer``: w joins the user features projected into every candidate's token.

A family without the hook gets this same feature injection unchanged, and the wrapper
checks once, when it is built, that w reaches the score through the autograd graph: a
family that ignores its numeric features is refused with an error that says so.
"""
from __future__ import annotations

import torch
from torch import nn

from ..requests import needs_requests
from ._features import FeatureSpec

PREFERENCE_PREFIX = "__preference_"     # the numeric feature names w arrives under


def preference_count(features: FeatureSpec) -> int:
    """How many of the last numeric features are a preference vector (0: none), for a
    family that treats w apart from the other features."""
    return sum(str(n).startswith(PREFERENCE_PREFIX) for n in features.numeric)


class ConditionedModel(nn.Module):
    """One model of ``family`` whose score depends on a preference w.

    ``score(scores, cat, num, w, groups=None)``: w (K,) gives (n,) scores, w (P, K) gives
    (P, n), each row as if the model were asked for that w alone (the batch is replicated,
    request ids kept apart per replica). ``forward`` is what the training loop calls: in
    training mode it draws ``per_batch`` preferences for the current step from
    ``sampler(step)`` (and remembers them in ``last``), in eval mode it scores under
    ``eval_prefs`` (the evaluation grid); either way it returns (P, n)."""

    def __init__(self, family: str, n_objectives: int, features: FeatureSpec,
                 params: dict | None = None):
        super().__init__()
        from . import build_model, preference_input
        build_params, keep_user = preference_input(family, params or {})
        self.family, self.k, self.keep_user = family, n_objectives, keep_user
        names = tuple(f"{PREFERENCE_PREFIX}{i}" for i in range(n_objectives))
        spec = FeatureSpec(features.categorical if keep_user else (),
                           (tuple(features.numeric) if keep_user else ()) + names)
        self.net = build_model(family, n_objectives, spec, build_params)
        self.needs_requests = needs_requests(self.net)
        self.n_cat, self.n_num = len(spec.categorical), len(spec.numeric) - n_objectives
        self.sampler = None            # step -> (P, K) preferences (trainables.conditioned)
        self.step = 0                  # the optimizer step the next training forward is
        self.last: tuple[int, torch.Tensor] | None = None
        self.register_buffer("eval_prefs", torch.full((1, n_objectives), 1.0 / n_objectives),
                             persistent=False)
        self._check_reaches(family)

    def score(self, scores, cat, num, w, groups=None) -> torch.Tensor:
        """The fused score under preference ``w``: (n,) for w (K,), (P, n) for w (P, K)."""
        w = torch.as_tensor(w, dtype=torch.float32, device=scores.device)
        single = w.dim() == 1
        w = w.reshape(-1, self.k)
        p, n = w.shape[0], scores.shape[0]
        cat = cat[:, :self.n_cat] if self.keep_user else cat[:, :0]
        num = num[:, :self.n_num] if self.keep_user else num[:, :0]

        def rep(t):
            return t if p == 1 else t.repeat(p, *([1] * (t.dim() - 1)))

        num = torch.cat([rep(num).to(w.dtype), w.repeat_interleave(n, 0)], 1)
        args = [rep(scores), rep(cat), num]
        if self.needs_requests:
            g = torch.zeros(n, dtype=torch.int64, device=scores.device) if groups is None \
                else groups - groups.min()
            span = int(g.max()) + 1 if n else 1
            args.append(g.repeat(p) + torch.arange(p, device=g.device).repeat_interleave(n)
                        * span)
        s = self.net(*args).view(p, n)
        return s[0] if single else s

    def forward(self, scores, cat, num, groups=None) -> torch.Tensor:
        if self.training:
            if self.sampler is None:
                raise RuntimeError("ConditionedModel in training mode needs a sampler "
                                   "(trainables.conditioned sets it)")
            w = self.sampler(self.step).to(scores.device)
            self.last = (self.step, w)
            self.step += 1
        else:
            w = self.eval_prefs
        return self.score(scores, cat, num, w, groups)

    def _check_reaches(self, family: str) -> None:
        """ValueError unless w is connected to the score (a family may ignore features)."""
        n = 4
        scores = torch.linspace(0.1, 0.9, n)[:, None].expand(n, self.k).contiguous()
        cat = torch.zeros(n, self.n_cat, dtype=torch.int64)
        num = torch.zeros(n, self.n_num)
        w = torch.full((self.k,), 1.0 / self.k, requires_grad=True)
        was = self.net.training
        self.net.eval()
        try:
            grad, = torch.autograd.grad(self.score(scores, cat, num, w).sum(), w,
                                        allow_unused=True)
        finally:
            self.net.train(was)
        if grad is None:
            raise ValueError(
                f"model.family = {family!r} does not use its numeric features with these "
                f"settings, so the preference w never reaches its score; a conditioned trial "
                f"needs a model that reads w (give the family a preference_input hook, "
                f"trainables/models/_preference.py)")
