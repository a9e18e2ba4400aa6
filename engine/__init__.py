"""engine: the recommender library behind the dashboard (datasets, models, evaluation, store)."""

__version__ = "0.1.0"
