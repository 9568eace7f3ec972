"""The ``cxbot`` command: argument parsing only; the work is done by the library."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from cxbot.errors import CxbotError

if TYPE_CHECKING:
    from rich.console import Console

    from cxbot.assistant import Assistant

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="cxbot: CX assistants, offline.")

ProjectDir = Annotated[Path, typer.Option("--dir", "-d", help="Project folder (with cxbot.yaml).")]


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _fail(console: Console, error: CxbotError) -> typer.Exit:
    from cxbot.console import print_error

    print_error(console, error)
    return typer.Exit(2)


def _assistant(path: Path) -> Assistant:
    from cxbot.assistant import Assistant

    return Assistant.from_dir(path)


@app.command()
def init(target: Annotated[Path, typer.Argument(help="Folder to create.")]) -> None:
    """Scaffold a new project: cxbot.yaml, knowledge/, flows/, prompts/."""
    console = _console()
    if (target / "cxbot.yaml").exists():
        console.print(f"[red]{target} already has a cxbot.yaml; nothing changed[/red]")
        raise typer.Exit(2)
    shutil.copytree(Path(__file__).with_name("scaffold"), target, dirs_exist_ok=True)
    console.print(f"Created a cxbot project in {target}. Next: cxbot ingest --dir {target}")


@app.command()
def ingest(path: ProjectDir = Path(".")) -> None:
    """Ingest the knowledge folder into the vector store (only what changed)."""
    from rich.progress import Progress

    console = _console()
    try:
        bot = _assistant(path)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("embedding", total=None)

            def step(source: str, done: int, total: int) -> None:
                progress.update(task, description=source, completed=done, total=total)

            report = bot.ingest(step)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    console.print(
        f"ingested: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged; "
        f"{report.chunks_embedded} chunks embedded, {report.chunks_total} in the store "
        f"({report.seconds:.1f}s)"
    )
    for error in report.errors:
        console.print(f"[yellow]skipped {error}[/yellow]")


@app.command()
def validate(
    path: ProjectDir = Path("."),
    schema: Annotated[
        Optional[Path], typer.Option(help="Also write the flow JSON schema here.")  # noqa: UP045
    ] = None,
) -> None:
    """Check config, flows and prompts; errors name the file, the line and the fix."""
    console = _console()
    try:
        bot = _assistant(path)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    flows = bot.pipeline.flows.flows
    console.print(
        f"[green]ok[/green]: {len(flows)} flows ({', '.join(flows)}), "
        f"{len(bot.pipeline.nlu.classifier.intents)} intents, guardrails "
        f"in={list(bot.config.guardrails.input)} out={list(bot.config.guardrails.output)}"
    )
    if schema is not None:
        import json

        from cxbot.flows.spec import flow_json_schema

        schema.write_text(json.dumps(flow_json_schema(), indent=2), encoding="utf-8")
        console.print(f"flow schema written to {schema}")


def _fresh(path: Path) -> None:
    from cxbot.config import load_config

    storage = path / load_config(path).storage.dir
    for name in ("conversations.sqlite", "calendar.sqlite"):
        for suffix in ("", "-wal", "-shm"):
            (storage / f"{name}{suffix}").unlink(missing_ok=True)


@app.command()
def chat(
    path: ProjectDir = Path("."),
    customer: Annotated[Optional[str], typer.Option(help="Customer id, e.g. C-1001.")] = None,  # noqa: UP045
    conversation: Annotated[str, typer.Option(help="Conversation id.")] = "cli",
    script: Annotated[
        Optional[Path], typer.Option(help="Run a scripted conversation file instead.")  # noqa: UP045
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Clear stored conversations and calendar bookings first.")
    ] = False,
) -> None:
    """Talk to the assistant; shows route, intent and citations for every reply."""
    console = _console()
    try:
        if fresh:
            _fresh(path)
        bot = _assistant(path)
        bot.warm_up()
        if script is not None:
            _run_script(console, bot, script)
            return
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _repl(console, bot, conversation, customer)


def _run_script(console: Console, bot: Assistant, script: Path) -> None:
    from rich.rule import Rule

    from cxbot.console import print_error, print_reply, print_user
    from cxbot.evals.script import check, load_script

    spec = load_script(script)
    failures = 0
    if spec.title:
        console.print(f"[bold]{spec.title}[/bold]")
    for number, convo in enumerate(spec.conversations, start=1):
        who = f" — customer {convo.customer_id}" if convo.customer_id else ""
        console.print(Rule(f"{number}. {convo.title or convo.id}{who}"))
        for turn in convo.turns:
            print_user(console, turn.user)
            try:
                reply = bot.respond(convo.id, turn.user, customer_id=convo.customer_id)
            except CxbotError as exc:
                print_error(console, exc)
                failures += 1
                continue
            print_reply(console, reply)
            for miss in check(turn.expect, reply):
                failures += 1
                console.print(f"     [bold red]✗ expected: {miss}[/bold red]")
    if failures:
        console.print(f"[bold red]{failures} expectation(s) not met[/bold red]")
        raise typer.Exit(1)
    console.print("[bold green]all expectations met[/bold green]")


def _repl(console: Console, bot: Assistant, conversation: str, customer: str | None) -> None:
    from cxbot.console import print_error, print_reply

    console.print(
        f"Chatting with {bot.config.assistant_name} ({bot.config.company}). "
        "Commands: /customer ID, /new, /quit."
    )
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if line.strip() in ("/quit", "/exit"):
            return
        if line.startswith("/customer"):
            customer = line.split(maxsplit=1)[1].strip() if " " in line.strip() else None
            console.print(f"[dim]customer = {customer}[/dim]")
            continue
        if line.strip() == "/new":
            import uuid

            conversation = f"cli-{uuid.uuid4().hex[:8]}"
            console.print(f"[dim]new conversation {conversation}[/dim]")
            continue
        try:
            reply = bot.respond(conversation, line, customer_id=customer)
        except CxbotError as exc:
            print_error(console, exc)
            continue
        print_reply(console, reply)


def main() -> None:
    """Entry point of the ``cxbot`` console script."""
    app(prog_name="cxbot")


if __name__ == "__main__":
    main()
