"""Output guardrails: run on the reply before it is sent."""
