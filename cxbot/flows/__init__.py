"""Deterministic task flows (YAML in ``flows/``): slots, validation, confirmation, actions."""
