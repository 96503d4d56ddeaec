"""Small, real settings for tests whose subject is not the training itself.

A search test that checks bookkeeping (resume, the pool's snapshots, Ray, kill -9) still
trains for real, on real digits images, but on 200 of them (160 to train, 40 to validate) in
minibatches of 16 without a latency measurement: a training takes about 0.3 s instead of
about 4 s, and every path (weights, pool files, safetensors, rewards) is the same. The
trainer's own tests (``test_tasks.py``), the examples and one end-to-end CLI search
(``test_cli.py``) train at full size.
"""

TINY_TASK = {"dataset": "digits", "max_samples": 100, "batch_size": 32, "latency_repeats": 0}
"""``TaskConfig(**TINY_TASK, epochs=...)``: digits, 200 images, minibatches of 16."""

TINY_SET = [arg for key, value in TINY_TASK.items() if key != "dataset"
            for arg in ("--set", f"task.{key}={value}")]
"""The same for ``fnas search``: ``--set task.max_samples=200 ...``."""
