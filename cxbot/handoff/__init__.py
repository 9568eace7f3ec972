"""Handoff to a human agent: when (triggers) and what the agent is told (summary)."""
