"""A space of your own (small CNNs) with your objective, trading accuracy against multiply-adds
as MnasNet's reward does: `python examples/custom_space.py [STORE]` (resumes if run again).
Runtime: about 10 s on one laptop core (12 trainings of a fraction of a second)."""
import sys
from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from torch import nn

import fnas
from fnas.tasks import RewardConfig

x, y = load_digits(return_X_y=True)
x, y = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16, torch.tensor(y)


@dataclass(frozen=True)
class ConvNet:  # an architecture of the space: a readable string, which is also its key
    depth: int
    width: int
    kernel: int

    def to_str(self):
        return f"conv{self.depth}_w{self.width}_k{self.kernel}"

    key = property(to_str)


def train_and_score(net, seed):  # your training -> held-out accuracy and the cost
    torch.manual_seed(seed)
    layers, c = [], 1
    for _ in range(net.depth):
        layers += [nn.Conv2d(c, net.width, net.kernel, padding=net.kernel // 2), nn.ReLU()]
        c = net.width
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * 64, 10))  # (a global average
    # pool before the classifier lost where the strokes are: accuracy ~0.55 at best)
    opt, g = torch.optim.Adam(model.parameters(), lr=1e-2), torch.Generator().manual_seed(seed)
    for _ in range(3):  # 3 epochs of minibatches of 50 (20 full-batch steps: accuracy ~0.5)
        for idx in torch.randperm(1400, generator=g).split(50):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        acc = (model(x[1400:]).argmax(1) == y[1400:]).float().mean().item()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    macs = sum(m.weight.numel() * 64 for m in convs) + c * 640  # 8x8 outputs per conv weight
    return {"accuracy": acc, "macs": macs}


space = fnas.make_space("small-cnn", {"depth": (1, 2, 3), "width": (8, 16, 32),
                                      "kernel": (1, 3, 5)}, decode=lambda c: ConvNet(**c))
search = fnas.create_search(store=sys.argv[1] if len(sys.argv) > 1 else "fnas-store",
                            name="small-cnn", space=space, objective=train_and_score,
                            version=1, reward=RewardConfig(metric="macs", target=50_000),
                            batch=4, load_if_exists=True)
search.optimize(budget=12)  # a progress bar on stderr
best = search.best
print(f"best: {best.arch} accuracy {best.accuracy:.3f} macs {best.macs} reward {best.reward:.3f} "
      "(sensible: accuracy near 0.9 on 397 held-out digits, at a fraction of the 50k-MAC "
      "target: the reward favours small nets)")
