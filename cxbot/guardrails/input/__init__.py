"""Input guardrails: run on the customer message before NLU."""
