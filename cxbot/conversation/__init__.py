"""Conversation state: events, the reducer that applies them, and the stores that keep them."""
