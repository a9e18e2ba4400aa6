"""Recommender models: the contract (`base`), the registry and one module per family."""

from engine.models.base import Cancelled, Recommender
from engine.models.registry import MODELS, create_model, describe_models, get_model_class

__all__ = ["Cancelled", "MODELS", "Recommender", "create_model", "describe_models", "get_model_class"]
