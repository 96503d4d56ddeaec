"""Proxy tasks: real datasets, the trainer, latency, the MnasNet reward, and rollouts."""

from fnas.tasks.datasets import Dataset, load_dataset, parse_dataset_spec
from fnas.tasks.latency import measure_latency
from fnas.tasks.reward import RewardConfig, mnas_reward
from fnas.tasks.rollout import STATUSES, Rollout, RolloutResult, run_rollout
from fnas.tasks.score_table import ScoreTable, load_score_table
from fnas.tasks.trainer import TaskConfig, TrainingDiverged, evaluate, train_model
from fnas.tasks.user_data import (
    RegisteredDataset,
    register_dataset,
    registered_datasets,
    unregister_dataset,
)

__all__ = [
    "Dataset", "load_dataset", "parse_dataset_spec", "measure_latency", "RewardConfig",
    "mnas_reward", "STATUSES", "Rollout", "RolloutResult", "run_rollout", "TaskConfig",
    "TrainingDiverged", "evaluate", "train_model", "ScoreTable", "load_score_table",
    "RegisteredDataset", "register_dataset", "registered_datasets", "unregister_dataset",
]
