"""Bridges to other conversational-AI frameworks (rasa-sdk)."""
