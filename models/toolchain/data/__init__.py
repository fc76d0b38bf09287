"""Episode datasets: the generic interface and the procedural pushing dataset used by the tiny model."""

from .episodes import ArrayEpisode, BatchBuilder, Episode, MinMax, all_windows, normalization_stats
from .synthetic import generate_dataset, generate_episode, vocabulary_texts

__all__ = [
    "ArrayEpisode",
    "BatchBuilder",
    "Episode",
    "MinMax",
    "all_windows",
    "normalization_stats",
    "generate_dataset",
    "generate_episode",
    "vocabulary_texts",
]
