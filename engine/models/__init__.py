"""Recommender models: the contract (`base`), the registry and one module per family."""

from engine.models.base import ABILITIES, Cancelled, Recommender
from engine.models.fold_in import FoldedUser
from engine.models.registry import (
    MODELS,
    create_model,
    describe_models,
    get_model_class,
    load_model,
    model_has,
    models_with,
)

__all__ = [
    "ABILITIES",
    "Cancelled",
    "FoldedUser",
    "MODELS",
    "Recommender",
    "create_model",
    "describe_models",
    "get_model_class",
    "load_model",
    "model_has",
    "models_with",
]
