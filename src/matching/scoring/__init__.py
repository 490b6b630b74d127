"""Scoring new pairs with a trained repository's saved models: `TrainedMatcher` and the `matching-score` command."""

from matching.scoring.matcher import TrainedMatcher

__all__ = ["TrainedMatcher"]
