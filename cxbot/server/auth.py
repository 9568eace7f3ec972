"""Who is calling the HTTP API: bearer keys from the config and signed customer sessions.

A key (``server.keys``) grants a role (customer, agent, supervisor, admin) and, for agents,
queues; its secret is read from the environment variable the config names. A session token
(``POST /v1/sessions``) grants the customer role for one conversation only: its payload
(conversation, customer, expiry) is signed with HMAC-SHA256 under the session secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cxbot.config import ServerConfig, ServerRole
from cxbot.errors import ConfigError, CxbotError

__all__ = ["AccessDenied", "Authenticator", "NotAuthenticated", "Principal"]

_TOKEN_PREFIX = "cxs1"


class NotAuthenticated(CxbotError):
    """No credentials, or credentials the server does not know (HTTP 401)."""


class AccessDenied(CxbotError):
    """Known credentials that do not allow this request (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request."""

    role: ServerRole
    queues: frozenset[str] = frozenset()
    conversation_id: str | None = None
    """A session token's conversation (customers only): the one conversation it may use."""
    customer_id: str | None = None
    """The customer a session was opened for, if any."""

    def require(self, *roles: ServerRole) -> None:
        if self.role not in roles:
            raise AccessDenied(f"the {self.role} role may not do this (needs {' or '.join(roles)})")

    def may_use(self, conversation_id: str) -> None:
        """A customer session may only use its own conversation."""
        if self.role == "customer" and self.conversation_id != conversation_id:
            raise AccessDenied("this session belongs to another conversation")

    def may_see_queue(self, queue: str) -> None:
        if self.role == "agent" and queue not in self.queues:
            raise AccessDenied(f"the conversation is in queue {queue!r}, not one of this agent's")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Maps ``Authorization: Bearer …`` to a :class:`Principal`; issues session tokens."""

    def __init__(
        self,
        config: ServerConfig,
        env: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys: dict[str, Principal] = {}
        for entry in config.keys:
            value = env.get(entry.key_env, "")
            if not value:
                raise ConfigError(
                    f"server.keys: environment variable {entry.key_env} is not set",
                    fix=f"export {entry.key_env}=<a long random key> before `cxbot serve`",
                )
            self._keys[value] = Principal(role=entry.role, queues=frozenset(entry.queues))
        secret = env.get(config.session_secret_env, "")
        self.ephemeral_secret = not secret
        self._secret = secret.encode() if secret else secrets.token_bytes(32)
        self._ttl = config.session_ttl_s
        self._clock = clock

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, f"{_TOKEN_PREFIX}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, conversation_id: str, customer_id: str | None = None) -> str:
        """A token granting the customer role for ``conversation_id`` only."""
        body = {"c": conversation_id, "u": customer_id, "e": int(self._clock()) + self._ttl}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{_TOKEN_PREFIX}.{payload}.{self._sign(payload)}"

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an ``Authorization`` header, or :class:`NotAuthenticated`."""
        if not authorization:
            raise NotAuthenticated("missing Authorization: Bearer header")
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise NotAuthenticated("the Authorization header must be `Bearer <key>`")
        for key, principal in self._keys.items():
            if hmac.compare_digest(key.encode(), credential.encode()):
                return principal
        if credential.startswith(_TOKEN_PREFIX + "."):
            return self._session(credential)
        raise NotAuthenticated("unknown key")

    def _session(self, token: str) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._sign(parts[1]), parts[2]):
            raise NotAuthenticated("invalid session token")
        try:
            body = json.loads(_unb64(parts[1]))
            conversation, customer, expires = body["c"], body["u"], body["e"]
        except (ValueError, KeyError, TypeError):
            raise NotAuthenticated("invalid session token") from None
        if not isinstance(conversation, str) or not isinstance(expires, int):
            raise NotAuthenticated("invalid session token")
        if expires < self._clock():
            raise NotAuthenticated("the session has expired; open a new one")
        return Principal(
            role="customer",
            conversation_id=conversation,
            customer_id=customer if isinstance(customer, str) else None,
        )
