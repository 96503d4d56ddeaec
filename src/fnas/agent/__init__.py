"""The RL agent: the LSTM controller and its PPO update."""

from fnas.agent.policy import LSTMPolicy
from fnas.agent.ppo import PPOConfig, ppo_update

__all__ = ["LSTMPolicy", "PPOConfig", "ppo_update"]
