"""``oncohybrid demo``: the README's main job."""

from __future__ import annotations

import typer
from rich.console import Console

from oncohybrid.errors import OncohybridError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        vendor: str = typer.Option("siemens", help="Vendor flavour of the demo PET."),
        timepoints: int = typer.Option(3, min=2, max=6, help="Number of timepoints."),
    ) -> None:
        """Generate a synthetic PET/CT demo patient, ingest it and list the studies."""
        from oncohybrid.cli.main import fail
        from oncohybrid.services.demo import run_demo

        console = Console()
        try:
            result = run_demo(vendor=vendor, timepoints=timepoints)
        except OncohybridError as exc:
            fail(exc)
            return
        console.print(
            f"Demo data: {result.data_dir}  (ingested: {result.new} new, "
            f"{result.duplicate} already stored, {result.skipped} skipped)"
        )
        from oncohybrid.cli.store_cmds import Level, print_table
        from oncohybrid.store import queries

        print_table(Level.studies, queries.list_studies())
