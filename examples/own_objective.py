"""Your data, network family and training: `python examples/own_objective.py [STORE]`; if
killed (Ctrl-C, kill -9), run it again and it resumes. Runtime: about 10 s on one core."""
import sys

import torch
from sklearn.datasets import load_digits

import fnas

x, y = (torch.tensor(a) for a in load_digits(return_X_y=True))  # your data, as tensors
x = x.float() / 16
space = fnas.make_space("digits-mlp", {"width": (16, 32, 64, 128), "depth": (1, 2, 3),
                                       "act": ("relu", "tanh"), "lr": (1e-3, 3e-3, 1e-2)})


def build(arch):  # arch: the chosen value of each decision
    act, layers, d = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[arch["act"]], [], 64
    for _ in range(arch["depth"]):
        layers, d = layers + [torch.nn.Linear(d, arch["width"]), act()], arch["width"]
    return torch.nn.Sequential(*layers, torch.nn.Linear(d, 10))


def train_and_score(arch, seed):  # your training: architecture -> held-out accuracy
    torch.manual_seed(seed)
    net = build(arch)
    opt = torch.optim.Adam(net.parameters(), lr=arch["lr"])
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[:1400]), y[:1400]).backward()
        opt.step()
    return (net(x[1400:]).argmax(1) == y[1400:]).float().mean().item()


search = fnas.create_search(store=sys.argv[1] if len(sys.argv) > 1 else "fnas-store",
                            name="digits-mlp", space=space, objective=train_and_score,
                            load_if_exists=True, batch=4)
search.optimize(budget=24)
print(f"best: {search.best.arch} accuracy {search.best.accuracy:.4f} (sensible: over 0.9)")
model = build(space.decode(search.best.decisions))  # the best network, to train in full
