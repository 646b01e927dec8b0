"""``oncohybrid respond``: assess one patient case file under a response criterion."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("respond")(respond)


def respond(
    case_file: Path = typer.Argument(..., help="Case JSON (see docs/response-case.md)."),
    criteria: str | None = typer.Option(
        None, "--criteria", help="Criterion name; overrides the case file's 'criteria'."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the assessment as JSON only."),
) -> None:
    """Assess a case: categories per timepoint, the numbers behind them, and the rule trace."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.response import assess_case, load_case

    try:
        case = load_case(case_file, criteria=criteria)
        assessment = assess_case(case)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    if as_json:
        # allow_nan=False: --json output is always standard JSON (RFC 8259 §6).
        typer.echo(json.dumps(assessment.to_json(), indent=2, ensure_ascii=False,
                              allow_nan=False))
        return
    _print_human(assessment.to_json())


def _fmt(value: object, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float | int) and suffix == "%":
        return f"{value:+.1f}%"
    return f"{value}{suffix}"


def _print_human(out: dict) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    # Piped output (no terminal) gets a fixed width so dates and categories are not cut.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    table = Table(title=f"Response assessment — {out['criteria']}")
    from oncohybrid.response.summary import change_vs_baseline, change_vs_nadir, key_number

    for col in ("Date", "Overall", "Target", "Non-target", "New", "Key number", "vs baseline",
                "vs nadir"):
        table.add_column(col, no_wrap=True)
    for tp in out["timepoints"]:
        key = key_number(tp)
        new = tp.get("new_lesions")
        table.add_row(
            tp["date"],
            tp["overall"],
            tp.get("target") or "—",
            tp.get("non_target") or "—",
            new if isinstance(new, str) else ("yes" if new else "—"),
            key[0] if key else "—",
            _fmt(change_vs_baseline(tp), "%"),
            _fmt(change_vs_nadir(tp), "%"),
        )
    console.print(table)
    for tp in out["timepoints"]:
        console.print(f"[bold]{tp['date']}[/bold] {tp['overall']}")
        for line in tp.get("trace", []):
            console.print(f"  • {line}", markup=False)
    console.print(f"Best overall response: [bold]{out.get('best_overall_response')}[/bold]")
    for key in ("progression_date", "best_overall_response_date"):
        if out.get(key):
            console.print(f"{key.replace('_', ' ').capitalize()}: {out[key]}")
    for w in out.get("warnings", []):
        console.print(f"warning: {w}", markup=False)
