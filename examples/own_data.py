"""Your own tensors on fnas's built-in proxy task (MnasNet space, real training), then the best
architecture trained again, saved and loaded: `python examples/own_data.py [STORE] [BUDGET]`;
if killed (Ctrl-C, kill -9), run it again and it resumes. Runtime: about 40 s on one laptop
core (8 trainings of 4.3 CPU-s, then one of the best on all the data)."""
import sys
from pathlib import Path

import torch
from sklearn.datasets import load_digits

import fnas
from fnas.tasks import TaskConfig

digits = load_digits()  # stand-in for your data: (N, C, H, W) images and (N,) integer labels
images = torch.tensor(digits.images[:, None], dtype=torch.float32)
labels = torch.tensor(digits.target)
# Every process that uses the data registers it (a resume too); its name, version and a hash
# of its content key the result cache, so other data never reuses these results.
fnas.register_dataset("my-digits", images, labels, version="v1")

store = Path(sys.argv[1] if len(sys.argv) > 1 else "fnas-store")
task = TaskConfig(dataset="my-digits", epochs=4, warmup_epochs=0, batch_size=32,
                  max_samples=600, latency_repeats=0)  # 2 epochs leave every net near chance
budget = int(sys.argv[2]) if len(sys.argv) > 2 else 8  # trainings (the tests give 2)
search = fnas.create_search(store=store, name="my-digits-mnas", space="mnas", task=task,
                            budget=budget, batch=min(4, max(2, budget // 2)),
                            load_if_exists=True)
search.optimize()  # a progress bar on stderr
print(f"best: accuracy {search.best.accuracy:.3f} (sensible: 0.8-0.95 on 120 held-out "
      f"images; chance 0.1) | {search.best.arch}")

out = store / "my-digits-best.safetensors"  # the best, trained again on all the data
done = fnas.train(f"{search.name}:1", store=store, out=out, progress=True, epochs=3)
model = fnas.load(out)  # an nn.Module in eval mode; model.info holds the normalisation
mean, std = (torch.tensor(v)[:, None, None] for v in (model.info.mean, model.info.std))
with torch.no_grad():
    pred = model((images[:100] - mean) / std).argmax(1)  # mostly training images
print(f"trained: held-out accuracy {done.result.accuracy:.3f} (sensible: over 0.9); loaded "
      f"{out.name}: {int((pred == labels[:100]).sum())}/100 right")
