"""The chat model: a LangChain ``ChatOpenAI`` for any OpenAI-compatible endpoint, or ``None``.

With no endpoint configured the assistant runs offline (extractive answers, template
summaries). The API key is read from the environment variable the config names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from cxbot.config import LLMConfig

__all__ = ["build_chat_model"]


def build_chat_model(config: LLMConfig, env: Mapping[str, str] | None = None) -> Any:
    """A ``BaseChatModel`` for ``config``, or ``None`` when no endpoint is configured."""
    if not config.enabled:
        return None
    from langchain_openai import ChatOpenAI

    env = os.environ if env is None else env
    return ChatOpenAI(
        base_url=config.base_url,
        model=config.model or "",
        api_key=env.get(config.api_key_env) or "not-set",  # type: ignore[arg-type]
        temperature=config.temperature,
        timeout=config.timeout_s,
        max_retries=config.max_retries,
    )
