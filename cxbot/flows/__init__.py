"""Deterministic task flows (YAML in ``flows/``): slot filling, validation, confirmation, actions."""
