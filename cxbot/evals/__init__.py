"""Offline evaluation of an assistant (datasets, evaluators, reports)."""
