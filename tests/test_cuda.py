"""The proxy trainer on a CUDA device. Skipped where no GPU is present (CI, laptops)."""

import pytest
import torch

from fnas.nn import build_model
from fnas.space import NAMED_ARCHS, ArchSpec, arch_cost, mnas_default
from fnas.tasks import RewardConfig, TaskConfig, run_rollout

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_rollout_on_cuda_learns_and_returns_cpu_weights():
    task = TaskConfig(epochs=5, device="cuda", latency_repeats=10)
    out = run_rollout(mnas_default(8), task, RewardConfig("latency", 1.0), seed=0)
    res = out.result
    assert res.status == "ok", res.message
    assert res.accuracy > 0.5 and res.latency_ms > 0
    assert all(v.device.type == "cpu" for v in out.weights.values())
    again = run_rollout(mnas_default(8), TaskConfig(epochs=1, device="cuda", latency_repeats=0),
                        RewardConfig(), seed=0, init_weights=out.weights)
    assert again.result.ok


def test_reference_model_on_cuda_matches_analytic_cost():
    spec = ArchSpec.parse(NAMED_ARCHS["mnasnet_a1"])
    model = build_model(spec).cuda().eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224, device="cuda"))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == arch_cost(spec).params
    timm = pytest.importorskip("timm")
    ref = timm.create_model("mnasnet_a1", pretrained=False)
    assert sum(p.numel() for p in ref.parameters()) == arch_cost(spec).params
