"""The model registry: an explicit dict from name to class (no import scanning).

A typo fails with the valid names in the message.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ParameterError, choices_hint
from engine.models.acf import ACF
from engine.models.als import ALS
from engine.models.attention_neumf import AttentionNeuMF
from engine.models.autorec import AutoRec
from engine.models.base import ABILITIES, Recommender
from engine.models.bpr import BPR
from engine.models.checkpoint import read_model_json
from engine.models.ease import EASE
from engine.models.feature_mlp import FeatureMLP
from engine.models.item2vec import Item2Vec
from engine.models.itemknn import ItemKNN
from engine.models.lightgcn import LightGCN
from engine.models.mf_als import MFALS
from engine.models.ncf import GMF, MLP, NeuMF
from engine.models.popularity import Popularity
from engine.models.sasrec import SASRec
from engine.models.svd import SVD
from engine.models.warp import WARP

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popularity,
        ALS,
        ItemKNN,
        EASE,
        SVD,
        MFALS,
        BPR,
        WARP,
        LightGCN,
        GMF,
        MLP,
        NeuMF,
        FeatureMLP,
        AttentionNeuMF,
        ACF,
        AutoRec,
        Item2Vec,
        SASRec,
    )
}


def get_model_class(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r}{choices_hint(name, MODELS, limit=30)}") from None


def load_model(directory) -> Recommender:
    """The model saved in checkpoint `directory`, as the class its ``model.json`` names."""
    return get_model_class(read_model_json(Path(directory))["model"]).load(directory)


def create_model(name: str, **params) -> Recommender:
    """A new, unfitted model with validated parameters (CLI strings are converted)."""
    return get_model_class(name).from_params(**params)


def model_has(name: str, ability: str) -> bool:
    """Whether the registered model `name` declares `ability` (one of `ABILITIES`), read from
    its class: no checkpoint is loaded. False for a name no longer registered (an old run)."""
    if ability not in ABILITIES:
        raise ParameterError(f"unknown ability {ability!r}{choices_hint(ability, ABILITIES)}")
    cls = MODELS.get(name)
    return cls is not None and ability in cls.abilities()


def models_with(ability: str) -> list[str]:
    """Names of the registered models that declare `ability`, in registry order."""
    return [name for name in MODELS if model_has(name, ability)]


def describe_models() -> list[dict]:
    """Name, description, defaults and ranges of every model, for `models --json` and the UI."""
    out = []
    for name, cls in MODELS.items():
        defaults = cls.default_params()
        out.append(
            {
                "name": name,
                "description": cls.description,
                "explicit": cls.explicit,
                "abilities": sorted(cls.abilities()),
                "params": {
                    p: {"default": defaults[p], **(cls.param_space[p].to_json() if p in cls.param_space else {})}
                    for p in cls.param_names()
                },
            }
        )
    return out
