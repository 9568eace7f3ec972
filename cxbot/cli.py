"""The ``cxbot`` command: argument parsing only; the work is done by the library."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import typer

from cxbot.errors import ConfigError, CxbotError

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

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
    """Check config, flows, prompts and eval suites; errors name the file, the line and the fix."""
    from cxbot.evals.suite import load_suites

    console = _console()
    try:
        bot = _assistant(path)
        suites = load_suites(path / "evals") if (path / "evals").is_dir() else []
    except CxbotError as exc:
        raise _fail(console, exc) from None
    flows = bot.pipeline.flows.flows
    console.print(
        f"[green]ok[/green]: {len(flows)} flows ({', '.join(flows)}), "
        f"{len(bot.pipeline.nlu.classifier.intents)} intents, guardrails "
        f"in={list(bot.config.guardrails.input)} out={list(bot.config.guardrails.output)}, "
        f"{len(suites)} eval suites ({sum(len(s.cases) for s in suites)} cases)"
    )
    if schema is not None:
        import json

        from cxbot.flows.spec import flow_json_schema

        schema.write_text(json.dumps(flow_json_schema(), indent=2), encoding="utf-8")
        console.print(f"flow schema written to {schema}")


eval_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Run the project's eval suites (evals/) and report; non-zero exit on a broken "
    "threshold or a regression against --baseline.",
)
app.add_typer(eval_app, name="eval")
train_app = typer.Typer(no_args_is_help=True, help="Train the project's models.")
app.add_typer(train_app, name="train")

OptionalPath = Optional[Path]  # noqa: UP045  (typer reads the annotation at run time)


@eval_app.callback()
def evaluate(
    ctx: typer.Context,
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
    suites: Annotated[
        OptionalPath, typer.Option(help="Suite file or folder (default: <project>/evals).")
    ] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
    html_out: Annotated[OptionalPath, typer.Option("--html", help="Write the HTML report.")] = None,
    markdown_out: Annotated[
        OptionalPath, typer.Option("--markdown", help="Write the Markdown summary.")
    ] = None,
    baseline: Annotated[
        OptionalPath, typer.Option(help="Earlier JSON report to compare with.")
    ] = None,
    max_regressions: Annotated[
        int, typer.Option(help="Cases allowed to flip from passed to failed.")
    ] = 0,
    workers: Annotated[int, typer.Option(help="Cases run at once.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of every random choice of the run.")] = 0,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from rich.progress import Progress

    from cxbot.evals.report import compare, load_report, print_report, to_json, to_markdown
    from cxbot.evals.runner import EvalRunner
    from cxbot.evals.suite import load_suites

    console = _console()
    try:
        loaded = load_suites(suites or project / "evals")
        old = load_report(baseline) if baseline is not None else None
        bot = _assistant(project)
        if bot.vector_store.count() == 0:
            bot.ingest()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("cases", total=sum(len(s.cases) for s in loaded))

            def step(key: str, done: int, total: int) -> None:
                progress.update(task, description=key, completed=done)

            report = EvalRunner(bot, workers=workers, seed=seed, progress=step).run(loaded)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    comparison = compare(report, old) if old is not None else None
    if comparison is not None:
        report["baseline"] = comparison.as_dict()
    print_report(console, report, comparison)
    if json_out is not None:
        json_out.write_text(to_json(report), encoding="utf-8")
    if markdown_out is not None:
        markdown_out.write_text(to_markdown(report, comparison), encoding="utf-8")
    if html_out is not None:
        from cxbot.evals.html import render_html

        html_out.write_text(render_html(report), encoding="utf-8")
    regressions = len(comparison.regressions) if comparison is not None else 0
    if not report["passed"] or regressions > max_regressions:
        raise typer.Exit(1)


def _write_report(
    console: Console, report: dict[str, Any], json_out: Path | None, html_out: Path | None
) -> None:
    """Print a sub-command's metrics and write its JSON/HTML report."""
    from cxbot.evals.report import to_json

    for name, value in report["metrics"].items():
        console.print(f"{name:>22}: {value}")
    if json_out is not None:
        json_out.write_text(to_json(report), encoding="utf-8")
    if html_out is not None:
        from cxbot.evals.html import render_html

        html_out.write_text(render_html(report), encoding="utf-8")


def _progress(console: Console) -> Callable[[str], None]:
    """A progress line printer with the seconds since it was made."""
    import time

    begin = time.perf_counter()

    def say(text: str) -> None:
        console.print(f"[dim]{time.perf_counter() - begin:7.1f}s  {text}[/]")

    return say


@train_app.command("nlu")
def train_nlu(
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
) -> None:
    """Train the intent model on the project's flow and intent examples and save it."""
    from cxbot.nlu.intent import TrainedIntentClassifier

    console = _console()
    try:
        bot = _assistant(project)
        classifier = bot.pipeline.nlu.classifier
        if not isinstance(classifier, TrainedIntentClassifier):
            raise ConfigError(
                "nlu.classifier is 'examples' in cxbot.yaml: there is nothing to train"
            )
        report = classifier.train(progress=_progress(console))
    except CxbotError as exc:
        raise _fail(console, exc) from None
    for name in report.__dataclass_fields__:
        console.print(f"{name:>18}: {getattr(report, name)}")
    console.print(f"saved to {classifier.model_dir}")


_INJECTION_ATTACKS = ("train", "dev", "train-privacy", "test", "test2", "test3")
_INJECTION_BENIGN = (
    "train",
    "dev",
    "northwind",
    "train-privacy",
    "train-general",
    "train-complaints",
    "train-answers",
    "test",
    "test2",
    "test3",
)
"""The sets in ``evals/guardrails/`` the shipped injection head is trained on (``*-test4``,
the blind set, stays out)."""


def _guardrail_sets(label: str, names: tuple[str, ...]) -> list[Path]:
    return [Path(f"evals/guardrails/{label}-{name}.jsonl") for name in names]


_INJECTION_ATTACK_FILES = _guardrail_sets("attacks", _INJECTION_ATTACKS)
_INJECTION_BENIGN_FILES = _guardrail_sets("benign", _INJECTION_BENIGN)


@train_app.command("injection")
def train_injection(
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
    attacks: Annotated[
        list[Path], typer.Option(help="Labelled attack files (JSONL with text).")
    ] = _INJECTION_ATTACK_FILES,
    benign: Annotated[
        list[Path], typer.Option(help="Hard-negative benign files (JSONL with text).")
    ] = _INJECTION_BENIGN_FILES,
    public: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Option(help="Public attack collections (files or folders); 30% stay held out."),
    ] = None,
    banking77: Annotated[
        OptionalPath, typer.Option(help="Banking77 train.csv: benign customer messages.")
    ] = None,
    sgd: Annotated[
        OptionalPath,
        typer.Option(help="SGD dialogues JSON: benign user turns (answers, corrections)."),
    ] = None,
    out: Annotated[OptionalPath, typer.Option(help="Where to write the head (JSON).")] = None,
    max_benign_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.5,
            help="Share of ordinary messages the threshold may block (cross-validated).",
        ),
    ] = 0.005,
) -> None:
    """Train the injection classifier head on the turn's MiniLM vectors and the messages'
    words."""
    from cxbot.evals.datasets import load_intent_csv, load_sgd_dialogues
    from cxbot.guardrails.input.classifier import DEFAULT_HEAD, train_from_sources

    console = _console()
    try:
        bot = _assistant(project)
        classifier = bot.pipeline.nlu.classifier
        texts = [t for ts in classifier.examples.values() for t in ts]
        if banking77 is not None:
            texts += [row.text for row in load_intent_csv(banking77)]
        if sgd is not None:
            turns = (t for d in load_sgd_dialogues(sgd) for t in d.turns)
            texts += [t.utterance for t in turns if t.speaker == "USER"]
        head = train_from_sources(
            bot.deps.embedder.embed_documents,
            attacks=[project / p for p in attacks],
            benign=[project / p for p in benign],
            public=public or [],
            benign_texts=texts,
            max_benign_rate=max_benign_rate,
        )
    except CxbotError as exc:
        raise _fail(console, exc) from None
    target = out or DEFAULT_HEAD
    head.save(target)
    console.print(f"threshold {head.threshold}; trained on {head.trained_on}")
    console.print(f"saved to {target}")


@eval_app.command("nlu")
def eval_nlu(
    train: Annotated[Path, typer.Option(help="CSV with text,category columns.")],
    test: Annotated[Path, typer.Option(help="CSV text,category; category oos = out of scope.")],
    shots: Annotated[
        Optional[int], typer.Option(help="Examples per intent (default: all).")  # noqa: UP045
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sampling and the held-out split.")] = 0,
    unknown_intents: Annotated[
        int, typer.Option(help="Hold K intents out of training; their test rows become oos.")
    ] = 0,
    tune_layers: Annotated[
        int, typer.Option(help="Top encoder layers fine-tuned (0: linear head only).")
    ] = 2,
    epochs: Annotated[
        Optional[int], typer.Option(help="Training epochs (default: by data size).")  # noqa: UP045
    ] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
    html_out: Annotated[OptionalPath, typer.Option("--html", help="Write the HTML report.")] = None,
) -> None:
    """Train the default intent model on TRAIN and score it on TEST (plus the OOS curve)."""
    from cxbot.embeddings import SentenceTransformerEmbedder
    from cxbot.evals.datasets import load_intent_csv
    from cxbot.evals.nlu import evaluate_intents
    from cxbot.nlu.model import TrainingSettings

    console = _console()
    try:
        report = evaluate_intents(
            load_intent_csv(train),
            load_intent_csv(test),
            SentenceTransformerEmbedder(),
            shots=shots,
            seed=seed,
            unknown_intents=unknown_intents,
            settings=TrainingSettings(tune_layers=tune_layers, epochs=epochs, seed=seed),
            progress=_progress(console),
        )
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _write_report(console, report, json_out, html_out)
    console.print("threshold  in-scope acc  oos recall")
    for row in report["oos_curve"]:
        recall = row.get("oos_recall")
        console.print(
            f"{row['threshold']:>9.3f}  {row['in_scope_accuracy']:>12.4f}  "
            f"{'-' if recall is None else format(recall, '.4f'):>10}"
        )


@eval_app.command("rag")
def eval_rag(
    corpus: Annotated[
        OptionalPath,
        typer.Option(help='JSONL passages {"id", "title", "text", …}; default: the project.'),
    ] = None,
    queries: Annotated[
        OptionalPath,
        typer.Option(
            help='JSONL {"id", "question", "gold_ids": […], "context"?, "standalone"?}; '
            "default: the project's evals/*/retrieval/queries.jsonl."
        ),
    ] = None,
    project: Annotated[
        Path, typer.Option("--project", "-p", help="Project (its config sets the default mode).")
    ] = Path("."),
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
    html_out: Annotated[OptionalPath, typer.Option("--html", help="Write the HTML report.")] = None,
) -> None:
    """Retrieval: hit@5, recall@5, MRR, nDCG@10 for dense, lexical and hybrid; follow-ups,
    "I don't know" on unanswerable questions, and (project knowledge) access control.

    With --corpus, its passages are embedded into a temporary store; without, the project's
    knowledge folder is ingested into temporary stores and ranked by document.
    """
    import tempfile

    from cxbot.config import load_config
    from cxbot.embeddings import SentenceTransformerEmbedder
    from cxbot.evals.datasets import load_corpus, load_queries
    from cxbot.evals.rag import evaluate_project_retrieval, evaluate_retrieval

    console = _console()
    root = project.resolve()
    try:
        config = load_config(root) if (root / "cxbot.yaml").exists() else None
        if queries is None:
            found = sorted((root / "evals").glob("*/retrieval/queries.jsonl"))
            if not found:
                raise ConfigError(
                    "no --queries given and no evals/*/retrieval/queries.jsonl in the project",
                    file=root,
                )
            queries = found[0]
        loaded = load_queries(queries)
        if corpus is not None:
            hybrid = config.rag.hybrid if config is not None else False
            report = evaluate_retrieval(
                load_corpus(corpus),
                loaded,
                SentenceTransformerEmbedder(),
                default_mode="hybrid" if hybrid else "dense",
                keyword_weight=config.rag.keyword_weight if config is not None else 0.5,
                min_score=config.rag.min_score if config is not None else 0.35,
                progress=_progress(console),
            )
        else:
            if config is None:
                raise ConfigError("no cxbot.yaml: give --corpus or a project", file=root)
            from cxbot.assistant import Assistant

            with tempfile.TemporaryDirectory(prefix="cxbot-eval-rag-") as storage:
                bot = Assistant.from_dir(root, env={**os.environ, "CXBOT_STORAGE__DIR": storage})
                try:
                    report = evaluate_project_retrieval(bot, loaded, progress=_progress(console))
                finally:
                    bot.close()
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _write_report(console, report, json_out, html_out)
    console.print(f"{'mode':>10}  hit@5   recall@5  mrr     ndcg@10")
    for mode, scores in report["by_mode"].items():
        console.print(
            f"{mode:>10}  {scores['hit@5']:.4f}  {scores['recall@5']:.4f}    "
            f"{scores['mrr']:.4f}  {scores['ndcg@10']:.4f}"
        )
    follow = report["follow_ups"]
    if follow.get("queries"):
        console.print(
            f"follow-ups ({follow['queries']}, {follow['mode']}): recall@5 with the conversation "
            f"{follow['with_context']['recall@5']:.4f}, written out standalone "
            f"{follow['standalone']['recall@5']:.4f} (ratio {follow['ratio']:.2f}; the question "
            f"alone {follow['question_only']['recall@5']:.4f})"
        )
    known = report["answerability"]
    if known["unanswerable"]:
        console.print(
            f"don't know on unanswerable: {known['dont_know']}/{known['unanswerable']} "
            f"({report['metrics']['dont_know_rate']:.1%}); answerable answered: "
            f"{known['answered']}/{known['answerable']} ({report['metrics']['answered_rate']:.1%})"
            f"; judged by {known.get('judged_by', 'retrieval evidence')}"
        )
    acl = report.get("acl")
    if acl is not None:
        console.print(
            f"access control: {acl['internal_chunks_in_customer_results']} staff-only chunks in "
            f"customer results over {acl['queries_checked']} queries (without the filter "
            f"{acl['queries_exposed_without_filter']} queries would show one)"
        )


@eval_app.command("flows")
def eval_flows(
    dialogues: Annotated[Path, typer.Option(help="SGD dialogues JSON (e.g. dev.json).")],
    schema: Annotated[Path, typer.Option(help="SGD schema JSON of those services.")],
    train: Annotated[
        OptionalPath, typer.Option(help="SGD training dialogues: add their intent utterances.")
    ] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
    html_out: Annotated[OptionalPath, typer.Option("--html", help="Write the HTML report.")] = None,
) -> None:
    """Track the dialogue state of SGD dialogues (baseline): intent accuracy, slot F1, JGA."""
    from cxbot.embeddings import SentenceTransformerEmbedder
    from cxbot.evals.sgd import evaluate_dialogues

    console = _console()
    try:
        report = evaluate_dialogues(
            dialogues, schema, SentenceTransformerEmbedder(), train_path=train
        )
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _write_report(console, report, json_out, html_out)
    for slot, scores in report["by_slot"].items():
        console.print(f"{'f1 ' + slot:>22}: {scores['f1']}")


@eval_app.command("guardrails")
def eval_guardrails(
    attacks: Annotated[
        list[Path],
        typer.Option(help='JSONL of messages to block ({"text": …}); repeat for more files.'),
    ],
    benign: Annotated[
        list[Path], typer.Option(help="JSONL (or Banking77 CSV) of ordinary customer messages.")
    ],
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
) -> None:
    """Screen labelled messages with the project's input guardrails: TPR, FPR, precision by
    unit, the injection layers that caught each attack, and a threshold sweep."""
    from cxbot.evals.datasets import GuardrailExample, load_guardrail_examples, load_intent_csv
    from cxbot.evals.guardrails import evaluate_guardrails

    console = _console()
    try:
        examples: list[GuardrailExample] = []
        files: list[tuple[str, int]] = []
        labelled: list[tuple[Path, Literal["attack", "benign"]]] = [
            *((p, "attack") for p in attacks),
            *((p, "benign") for p in benign),
        ]
        for path, label in labelled:
            if path.suffix == ".csv":
                rows = load_intent_csv(path)
                found = [GuardrailExample(r.text, label, path.name, r.label) for r in rows]
            else:
                found = load_guardrail_examples(path, label=label)
            examples += found
            files.append((str(path), len(found)))
        report = evaluate_guardrails(_assistant(project), examples, files)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    if json_out is not None:
        from cxbot.evals.report import to_json

        json_out.write_text(to_json(report), encoding="utf-8")
    for name in ("tpr", "fpr", "precision", "pass_rate"):
        if name in report["metrics"]:
            console.print(f"{name:>22}: {report['metrics'][name]}")
    for name, counts in report["by_guardrail"].items():
        console.print(f"{name:>22}: {counts}")
    for name, row in report["by_file"].items():
        console.print(
            f"{row['label']:>22}: {row['blocked']}/{row['messages']} blocked "
            f"({row['block_rate']:.2%}) {name}",
            markup=False,
        )
    console.print(f"{'injection layers':>22}: {report['by_layer']}")


@eval_app.command("grounding")
def eval_grounding(
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
    cases: Annotated[
        OptionalPath,
        typer.Option(help="Grounding cases (default: evals/*/grounding/cases.jsonl)."),
    ] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
) -> None:
    """Grounding guardrail on labelled answers: share of unsupported sentences flagged and of
    supported ones flagged by mistake, on the whole set, its tuning and held-out halves, by
    kind, and over a sweep of the risk threshold."""
    from cxbot.evals.grounding import evaluate_grounding, load_grounding_cases
    from cxbot.guardrails.output.grounding import GroundingGuard
    from cxbot.prompts import ReplyKey

    console = _console()
    try:
        if cases is None:
            found = sorted((project / "evals").glob("*/grounding/cases.jsonl"))
            if not found:
                raise ConfigError(
                    "no --cases given and no evals/*/grounding/cases.jsonl",
                    file=project / "evals",
                    fix="pass --cases FILE",
                )
            cases = found[0]
        loaded = load_grounding_cases(cases)
        bot = _assistant(project)
        guard = next(
            (g for g in bot.pipeline.output_guardrails if isinstance(g, GroundingGuard)),
            None,
        ) or GroundingGuard(
            bot.deps.embedder.embed_documents,
            fallback=bot.deps.prompts.reply(ReplyKey.UNGROUNDED),
        )
        report = evaluate_grounding(guard, loaded)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _write_report(console, report, json_out, None)
    for split, rates in report["by_split"].items():
        console.print(
            f"{split:>22}: unsupported flagged {rates['flagged_unsupported']}/"
            f"{rates['unsupported']} ({rates['flagged_unsupported_rate']:.1%}), supported "
            f"flagged {rates['flagged_supported']}/{rates['supported']} "
            f"({rates['flagged_supported_rate']:.1%})"
        )
    for kind, counts in report["by_kind"].items():
        console.print(f"{kind:>22}: {counts['flagged']}/{counts['sentences']} flagged")
    console.print(f"{'answers':>22}: {report['verdicts']}")
    console.print("threshold  unsupported flagged  supported flagged")
    for row in report["sweep"]:
        console.print(
            f"{row['threshold']:>9.1f}  {row['flagged_unsupported_rate']:>19.1%}  "
            f"{row['flagged_supported_rate']:>17.1%}"
        )


@eval_app.command("handoff")
def eval_handoff(
    project: Annotated[Path, typer.Option("--project", "-p", help="Project folder.")] = Path("."),
    conversations: Annotated[
        OptionalPath,
        typer.Option(help="Scripted conversations (default: evals/*/handoff/conversations.yml)."),
    ] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
) -> None:
    """Handoff triggers and summaries on scripted conversations: trigger precision and
    recall (overall and per reason), queue accuracy, summary field recall."""
    from cxbot.evals.handoff import evaluate_handoffs, load_conversations, summary_line
    from cxbot.evals.report import to_json

    console = _console()
    try:
        if conversations is None:
            found = sorted((project / "evals").glob("*/handoff/conversations.yml"))
            if not found:
                raise ConfigError(
                    "no --conversations given and no evals/*/handoff/conversations.yml",
                    file=project / "evals",
                    fix="pass --conversations FILE",
                )
            conversations = found[0]
        loaded = load_conversations(conversations)
        bot = _assistant(project)
        if bot.vector_store.count() == 0:
            bot.ingest()
        report = evaluate_handoffs(bot, loaded, progress=_progress(console))
    except CxbotError as exc:
        raise _fail(console, exc) from None
    for reason, scores in report["by_reason"].items():
        console.print(
            f"{reason:>22}: precision {scores['precision']:.1%}, recall {scores['recall']:.1%} "
            f"({scores['correct']}/{scores['expected']})"
        )
    if report["failures"]:
        console.print(f"{'not as expected':>22}: {', '.join(report['failures'])}")
    console.print(summary_line(report))
    if json_out is not None:
        json_out.write_text(to_json(report), encoding="utf-8")


@app.command()
def bench(
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Argument(
            help="Benchmarks to run, e.g. `cxbot bench nlu` (default: all but `load`); "
            "`cxbot bench load` runs the multi-worker load test alone."
        ),
    ] = None,
    path: ProjectDir = Path("."),
    turns: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Scripted turns per route (rag, flow, blocked, handoff; default 30), or "
            "turns per simulated customer with `load` (default 20)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="load: worker processes on Redis and a Chroma server.")
    ] = 4,
    customers: Annotated[int, typer.Option(help="load: concurrent simulated customers.")] = 50,
    timeout: Annotated[
        float, typer.Option(help="load: seconds after which no further message is sent.")
    ] = 900.0,
    scale: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            help="Sizes in chunks, repeat or comma-separate: retrieve's stores (default "
            "1000,10000) and ingest's synthetic corpora (default 1000)."
        ),
    ] = None,
    suite: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            help="Only these: import, cold_start, turns, nlu, ingest, retrieve, guardrails."
        ),
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline",
            help="Also time the naive LangChain pipelines (turns, ingest) on the same data; "
            "with `load`, the same load on one worker with the SQLite defaults.",
        ),
    ] = True,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
) -> None:
    """Benchmark import, cold start, turns per route and ingest (each against a naive
    LangChain pipeline), and dense and hybrid retrieval at scale, on a temporary copy of
    the project."""
    import json

    from cxbot.bench import SUITES, format_report, run_benchmarks

    if only and "load" in only:
        if len(only) > 1 or suite:
            raise typer.BadParameter("`load` runs alone: cxbot bench load [--workers N] …")
        _bench_load(path, workers, customers, turns or 20, timeout, baseline, json_out)
        return
    try:
        sizes = [int(n) for item in scale or () for n in item.split(",") if n.strip()]
    except ValueError:
        raise typer.BadParameter(
            "whole numbers, e.g. --scale 1000,10000", param_hint="--scale"
        ) from None
    console = _console()
    with console.status("benchmarking…") as status:
        try:
            report = run_benchmarks(
                path,
                suites=[*(only or ()), *(suite or ())] or SUITES,
                scale=sizes or None,
                turns=turns or 30,
                baseline=baseline,
                progress=lambda name: status.update(f"benchmarking: {name}…"),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        except CxbotError as exc:
            raise _fail(console, exc) from None
    console.print(format_report(report), markup=False, end="")
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"JSON report written to {json_out}")


def _bench_load(
    path: Path,
    workers: int,
    customers: int,
    turns: int,
    timeout: float,
    baseline: bool,
    json_out: Path | None,
) -> None:
    import json

    from cxbot.loadtest import format_load_report, run_load

    console = _console()
    with console.status("load test…") as status:
        try:
            report = run_load(
                path,
                workers=workers,
                customers=customers,
                turns=turns,
                baseline=baseline,
                timeout_s=timeout,
                progress=lambda name: status.update(f"{name}…"),
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        except CxbotError as exc:
            raise _fail(console, exc) from None
    console.print(format_load_report(report), markup=False, end="")
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"JSON report written to {json_out}")
    metrics = report["metrics"]
    if metrics["lost_turns"] or metrics["crossed_conversations"] or metrics["double_bookings"]:
        raise typer.Exit(1)


@app.command()
def audit(
    conversation: Annotated[str, typer.Argument(help="Conversation id.")],
    path: ProjectDir = Path("."),
) -> None:
    """Print every guardrail verdict and every degraded turn (a backend that failed)
    recorded in a conversation."""
    from rich.markup import escape
    from rich.table import Table

    from cxbot.conversation.events import Degraded, UserUttered

    console = _console()
    try:
        bot = _assistant(path)
        events = bot.events(conversation)
        verdicts = bot.audit(conversation)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    if not events:
        console.print(f"[red]no conversation {escape(conversation)!r}[/red]")
        raise typer.Exit(2)
    table = Table(title=f"guardrail verdicts — {conversation}")
    for column in ("turn", "stage", "guardrail", "verdict", "reason", "score"):
        table.add_column(column)
    for turn, verdict in verdicts:
        table.add_row(
            str(turn),
            verdict.stage,
            verdict.guardrail,
            verdict.action,
            escape(verdict.reason),
            f"{verdict.score:.2f}",
        )
    console.print(table if table.row_count else "no guardrail verdicts in this conversation")
    degraded = Table(title=f"degraded turns — {conversation}")
    for column in ("turn", "component", "error", "attempts", "ms", "instead"):
        degraded.add_column(column)
    turn = 0
    for event in events:
        if isinstance(event, UserUttered):
            turn += 1
        if isinstance(event, Degraded):
            degraded.add_row(
                str(max(turn, 1)),
                event.component,
                event.error,
                str(event.attempts),
                f"{event.elapsed_ms:.0f}",
                event.fallback,
            )
    if degraded.row_count:
        console.print(degraded)


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
        if bot.vector_store.count() == 0:
            console.print(
                '[yellow]the knowledge base is empty: questions will get "I don\'t know" '
                f"until you run `cxbot ingest --dir {path}`[/yellow]"
            )
        if script is not None:
            _run_script(console, bot, script)
            return
    except CxbotError as exc:
        raise _fail(console, exc) from None
    _repl(console, bot, conversation, customer)


def _run_script(console: Console, bot: Assistant, script: Path) -> None:
    from rich.markup import escape
    from rich.rule import Rule

    from cxbot.console import print_error, print_reply, print_user
    from cxbot.evals.evaluators import TurnOutcome, check_turn
    from cxbot.evals.suite import load_suite
    from cxbot.prompts import ReplyKey

    suite = load_suite(script)
    dont_know = bot.deps.prompts.reply(ReplyKey.DONT_KNOW)
    failures = 0
    if suite.description:
        console.print(f"[bold]{escape(suite.description)}[/bold]")
    for number, case in enumerate(suite.cases, start=1):
        who = f" — customer {case.customer_id}" if case.customer_id else ""
        console.print(Rule(escape(f"{number}. {case.title or case.id}{who}")))
        for turn in case.dialogue:
            print_user(console, turn.user)
            try:
                reply = bot.respond(case.id, turn.user, customer_id=case.customer_id)
            except CxbotError as exc:
                print_error(console, exc)
                failures += 1
                continue
            print_reply(console, reply)
            frame = bot.state(case.id).flow
            outcome = TurnOutcome(reply, dict(frame.slots) if frame else {}, dont_know)
            for check in check_turn(turn.expect, outcome):
                if not check.passed:
                    failures += 1
                    console.print(
                        f"     [bold red]✗ {check.evaluator}: expected {escape(check.expected)}, "
                        f"got {escape(check.got)}[/bold red]"
                    )
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


@app.command()
def serve(
    path: ProjectDir = Path("."),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the HTTP API (chat, streaming, agent assist) and the widget under /widget/."""
    console = _console()
    try:
        import uvicorn

        from cxbot.server import create_app
    except ImportError as exc:
        console.print(f"[red]{exc.name} is missing: pip install 'cxbot[server]'[/red]")
        raise typer.Exit(2) from None
    try:
        bot = _assistant(path)
        api = create_app(bot, bot.config)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    uvicorn.run(api, host=host, port=port)


insights_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    help="Conversation analytics over the conversation store: containment, handoffs, out of "
    "scope, intents by week, flows and drop-off, guardrail blocks, don't know, latency.",
)
app.add_typer(insights_app, name="insights")


def _since(value: str | None) -> datetime | None:
    from datetime import datetime

    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--since"
        ) from None


def _conversations_file(path: Path, db: Path | None) -> Path:
    from cxbot.config import load_config

    if db is not None:
        if not db.is_file():
            raise ConfigError(
                "conversations file not found",
                file=db,
                fix="pass the path of a conversations.sqlite",
            )
        return db
    return path / load_config(path).storage.dir / "conversations.sqlite"


@insights_app.callback()
def insights(
    ctx: typer.Context,
    path: ProjectDir = Path("."),
    db: Annotated[
        OptionalPath, typer.Option(help="A conversations.sqlite (default: the project's).")
    ] = None,
    since: Annotated[Optional[str], typer.Option(help="Only turns from this date (ISO).")] = None,  # noqa: UP045
    html_out: Annotated[OptionalPath, typer.Option("--html", help="Write the HTML page.")] = None,
    json_out: Annotated[OptionalPath, typer.Option("--json", help="Write the JSON report.")] = None,
) -> None:
    """Print the insights of the stored conversations; optionally write HTML and JSON."""
    if ctx.invoked_subcommand is not None:
        return
    from cxbot.insights import analyse, render_html, summary_lines

    console = _console()
    try:
        report = analyse(_conversations_file(path, db), since=_since(since))
    except CxbotError as exc:
        raise _fail(console, exc) from None
    for line in summary_lines(report):
        console.print(line, markup=False)
    if json_out is not None:
        json_out.write_text(report.to_json_text(), encoding="utf-8")
    if html_out is not None:
        html_out.write_text(render_html(report, title=path.resolve().name), encoding="utf-8")


@insights_app.command("simulate")
def insights_simulate(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the simulated store and truth.json.")
    ],
    path: ProjectDir = Path("."),
    conversations: Annotated[int, typer.Option(help="Conversations to replay.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    weeks: Annotated[int, typer.Option(help="Weeks the traffic is spread over.")] = 6,
    oos_share: Annotated[
        float, typer.Option(help="Share of conversations that are Banking77 messages.")
    ] = 0.2,
) -> None:
    """Replay eval-suite conversations (and Banking77 messages, when the dataset is here)
    through the assistant on a fake clock; write the store and the simulator's own tally."""
    import time

    from cxbot.evals.datasets import DatasetMissing, dataset_root
    from cxbot.insights.simulate import banking77_scripts, plan, simulate, suite_scripts

    console = _console()
    say = _progress(console)
    try:
        bot = _assistant(path)
        if bot.vector_store.count() == 0:
            bot.ingest()
        scripts = suite_scripts(path / "evals")
        extra = []
        try:
            extra = banking77_scripts(dataset_root(path) / "banking77" / "test.csv")
        except DatasetMissing as exc:
            console.print(f"[yellow]Banking77 not found ({exc}); suite conversations only[/]")
        planned = plan(
            scripts, conversations, seed=seed, weeks=weeks, extra=extra, extra_share=oos_share
        )
        begin = time.perf_counter()
        every = max(1, conversations // 20)

        def step(done: int, total: int) -> None:
            if done % every == 0 or done == total:
                say(f"{done}/{total} conversations")

        truth = simulate(bot, planned, out, seed=seed, progress=step)
    except CxbotError as exc:
        raise _fail(console, exc) from None
    console.print(
        f"{truth.conversations} conversations, {truth.turns} turns in "
        f"{time.perf_counter() - begin:.1f} s; store {out / 'conversations.sqlite'}, "
        f"ground truth {out / 'truth.json'}"
    )


@app.command()
def suggest(
    path: ProjectDir = Path("."),
    db: Annotated[
        OptionalPath, typer.Option(help="A conversations.sqlite (default: the project's).")
    ] = None,
    since: Annotated[Optional[str], typer.Option(help="Only turns from this date (ISO).")] = None,  # noqa: UP045
    out: Annotated[Path, typer.Option("--out", help="The YAML patch to write.")] = Path(
        "suggestions.yaml"
    ),
) -> None:
    """Cluster the messages the assistant did not understand and the questions it could not
    answer; write a reviewable YAML patch (examples for intents, candidate intents, articles
    to write). Nothing under flows/ is changed."""
    from cxbot.insights.suggest import suggest_from_project

    console = _console()
    try:
        suggestions = suggest_from_project(path, _conversations_file(path, db), since=_since(since))
    except CxbotError as exc:
        raise _fail(console, exc) from None
    out.write_text(suggestions.to_yaml(), encoding="utf-8")
    for line in suggestions.summary_lines():
        console.print(line, markup=False)
    console.print(f"written to {out}; review it, then copy what you accept into flows/")


def main() -> None:
    """Entry point of the ``cxbot`` console script."""
    app(prog_name="cxbot")


if __name__ == "__main__":
    main()
