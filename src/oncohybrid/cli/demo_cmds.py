"""``oncohybrid demo``: the README's main job.

Generates a synthetic PET/CT demo patient, ingests it, assesses its response under the
default criteria, prints the study list and the per-criterion tables, then serves the
reading room on localhost with a demo sign-in (``--no-serve`` stops after the tables).
"""

from __future__ import annotations

import typer
from rich.console import Console

from oncohybrid.errors import OncohybridError


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        vendor: str = typer.Option("siemens", help="Vendor flavour of the demo PET."),
        timepoints: int = typer.Option(3, min=2, max=6, help="Number of timepoints."),
        serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the reading room."),
        host: str = typer.Option("127.0.0.1", help="Address to serve on (loopback by default)."),
        port: int = typer.Option(8000, help="TCP port to serve on."),
        size: str = typer.Option("clinical", help="Phantom grid: clinical or small (faster)."),
    ) -> None:
        """Generate, ingest and assess a demo patient, then serve the reading room."""
        from oncohybrid.cli.assess_cmds import print_tables
        from oncohybrid.cli.main import fail
        from oncohybrid.cli.store_cmds import Level, print_table
        from oncohybrid.config import get_settings
        from oncohybrid.services.catalog import list_studies
        from oncohybrid.services.demo import run_demo

        console = Console()
        settings = get_settings()
        try:
            result = run_demo(settings, vendor=vendor, timepoints=timepoints, size=size)
            console.print(
                f"Demo data: {result.data_dir}  (ingested: {result.new} new, "
                f"{result.duplicate} already stored, {result.skipped} skipped)",
                highlight=False,
            )
            print_table(Level.studies, list_studies(settings=settings))
            for assessment in result.assessments:
                print_tables(assessment)
            if not serve:
                return
            from oncohybrid.services.users import ensure_demo_user
            from oncohybrid.web.app import serve as serve_app

            username, password = ensure_demo_user(settings)
            console.print(
                f"\nReading room: [bold]http://{host}:{port}/[/]  "
                f"sign in as [bold]{username}[/] / [bold]{password}[/]  (Ctrl-C stops)",
                highlight=False,
            )
            serve_app(settings, host, port)
        except OncohybridError as exc:
            fail(exc)
