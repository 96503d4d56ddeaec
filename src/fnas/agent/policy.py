"""The controller: an autoregressive LSTM over a factorized space's decisions (MnasNet/NASNet).

At step t the LSTM cell reads the embedding of decision t-1's choice (a learned start vector at
t = 0) and a per-decision linear head gives the logits of decision t. One layer, 100 hidden
units by default, as in MnasNet. The policy sees only decision sizes, never modules or specs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Categorical

__all__ = ["LSTMPolicy"]


class LSTMPolicy(nn.Module):
    """pi_theta(a) = prod_t pi(a_t | a_<t), an LSTM cell unrolled over the decisions."""

    def __init__(self, sizes: Sequence[int], hidden: int = 100) -> None:
        super().__init__()
        self.sizes = tuple(int(s) for s in sizes)
        self.hidden = hidden
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.embeds = nn.ModuleList(nn.Embedding(n, hidden) for n in self.sizes)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in self.sizes)
        for p in self.parameters():  # ENAS init: a near-uniform initial policy
            nn.init.uniform_(p, -0.1, 0.1)

    def _steps(self, n: int, actions: torch.Tensor | None, generator: torch.Generator | None):
        x = self.start.expand(n, -1)  # (n, H)
        h = c = torch.zeros(n, self.hidden, dtype=x.dtype, device=x.device)
        chosen, logps, ents = [], [], []
        for t, head in enumerate(self.heads):
            h, c = self.cell(x, (h, c))
            dist = Categorical(logits=head(h))  # (n, sizes[t])
            if actions is None:
                a = torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)
            else:
                a = actions[:, t]
            chosen.append(a)
            logps.append(dist.log_prob(a))
            ents.append(dist.entropy())
            x = self.embeds[t](a)  # (n, H)
        return torch.stack(chosen, 1), torch.stack(logps, 1), torch.stack(ents, 1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` decision vectors (n, T) and their per-decision log-probabilities (n, T)."""
        actions, logp, _ = self._steps(n, None, generator)
        return actions, logp

    def evaluate(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-decision log-probabilities and entropies (n, T) of given decision vectors."""
        _, logp, ent = self._steps(actions.shape[0], actions, None)
        return logp, ent
