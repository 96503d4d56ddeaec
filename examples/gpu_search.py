"""The built-in proxy task (MnasNet space, digits) trained on the GPU when there is one, else
on the CPU: `python examples/gpu_search.py [STORE] [BUDGET]` (resumes if run again). On a GPU raise
`max_samples`, `epochs` and `budget`: these settings are sized for a CPU. Runtime: about
30 s on one laptop core (8 trainings of about 4 CPU-s)."""
import sys

import torch

import fnas
from fnas.tasks import TaskConfig

device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cpu":
    print("note: no CUDA device visible (torch.cuda.is_available() is False): training on CPU")
task = TaskConfig(dataset="digits", device=device, epochs=4, warmup_epochs=0, batch_size=32,
                  max_samples=600, latency_repeats=5)  # latency is measured on the device too
budget = int(sys.argv[2]) if len(sys.argv) > 2 else 8  # trainings
search = fnas.create_search(store=sys.argv[1] if len(sys.argv) > 1 else "fnas-store",
                            name=f"mnas-digits-{device}", space="mnas", task=task,
                            budget=budget, batch=min(4, max(2, budget)), load_if_exists=True)
search.optimize()  # a progress bar on stderr
best = search.best
print(f"best on {device}: accuracy {best.accuracy:.3f} (sensible: 0.8-0.95 on 120 held-out "
      f"images; chance 0.1) latency {best.latency_ms:.2f} ms {best.arch}")
