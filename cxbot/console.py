"""Terminal rendering of turns and errors for the ``cxbot`` commands (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxbot.errors import CxbotError
from cxbot.types import Reply

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["print_error", "print_reply", "print_user"]

_ROUTE_STYLE = {"rag": "cyan", "flow": "green", "handoff": "magenta", "blocked": "red"}


def print_user(console: Console, text: str) -> None:
    from rich.markup import escape

    console.print(f"[bold]you[/bold]  {escape(text)}")


def print_reply(console: Console, reply: Reply, *, show_trace: bool = True) -> None:
    from rich.markup import escape
    from rich.panel import Panel

    style = _ROUTE_STYLE[reply.route]
    console.print(f"[bold {style}]bot[/bold {style}]  {escape(reply.text)}")
    meta = f"route={reply.route} intent={reply.intent or '-'}"
    if show_trace and reply.trace:
        meta += f" total={reply.trace.get('total', 0):.0f}ms"
    console.print(f"     [dim]{escape(meta)}[/dim]")
    for n, citation in enumerate(reply.citations, start=1):
        console.print(f"     [dim][{n}] {escape(citation.source)} — {escape(citation.title)}[/dim]")
    if reply.handoff is not None:
        console.print(
            Panel(escape(reply.handoff.as_text()), title="handoff summary", style="magenta")
        )


def print_error(console: Console, error: CxbotError) -> None:
    from rich.markup import escape

    console.print(f"[bold red]error[/bold red] ({type(error).__name__}): {escape(str(error))}")
