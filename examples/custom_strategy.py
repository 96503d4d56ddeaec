"""A strategy of your own: hill climbing (mutate the best so far), registered by name and run
through fnas's loop, store, cache and resume. `python examples/custom_strategy.py [STORE]`
Runtime: a few seconds (60 evaluations of an instant objective)."""
import sys

import numpy as np

import fnas
from fnas.search import STRATEGIES, Proposal, Strategy


class HillClimb(Strategy):
    name = "hill"

    def __init__(self, space, seed):
        super().__init__(space, seed)
        self.rng, self.best, self.best_reward = np.random.default_rng(seed), None, -np.inf

    def ask(self, n):  # n proposals: uniform samples first, then one-decision mutants
        out = []
        for _ in range(n):
            d = list(self.space.sample(self.rng))
            if self.best is not None:
                d, i = list(self.best), self.rng.integers(len(self.space.sizes))
                d[i] = int(self.rng.integers(self.space.sizes[i]))
            out.append(Proposal(self.space.decode(d), tuple(d)))
        return out

    def tell(self, proposals, rewards):
        i = int(np.argmax(rewards))
        if rewards[i] > self.best_reward:
            self.best, self.best_reward = proposals[i].decisions, float(rewards[i])
        return {"hill/best": self.best_reward}

    def state(self):  # everything needed for an exact resume, as JSON
        return {}, {"rng": self.rng.bit_generator.state, "best": self.best,
                    "best_reward": self.best_reward}

    def load_state(self, tensors, meta):
        self.rng.bit_generator.state = meta["rng"]
        self.best, self.best_reward = meta["best"], meta["best_reward"]


STRATEGIES["hill"] = lambda space, cfg: HillClimb(space, cfg.seed)
space = fnas.make_space("toy", {f"x{i}": range(5) for i in range(6)})
search = fnas.create_search(store=sys.argv[1] if len(sys.argv) > 1 else "fnas-store",
                            name="hill-toy", space=space, strategy="hill", batch=4,
                            objective=lambda a: -sum((v - 3) ** 2 for v in a.values()),
                            load_if_exists=True)
search.optimize(budget=60)  # a progress bar on stderr
print(f"best: {search.best.arch} reward {search.best.reward} (the optimum: every x = 3, reward 0; "
      "sensible: -2 or more)")
