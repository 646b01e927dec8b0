"""``oncohybrid phantom``: write a synthetic multi-vendor PET/CT cohort with ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from oncohybrid.errors import OncohybridError


def register(app: typer.Typer) -> None:
    @app.command("phantom")
    def phantom(
        out: Path = typer.Argument(..., help="Output directory (created if missing)."),
        patients: int = typer.Option(3, "--patients", min=1, help="Number of patients."),
        timepoints: int = typer.Option(3, "--timepoints", min=1, help="Scans per patient."),
        vendor: str = typer.Option(
            "mixed", "--vendor", help="siemens | ge | philips | mixed (cycles the three)."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed (output is deterministic)."),
        noise_free: bool = typer.Option(
            False, "--noise-free", help="PET resolution blur but no noise; CT without noise."
        ),
        size: str = typer.Option(
            "clinical", "--size", help="clinical (neck to pelvis) | small (fast tests)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the ground truth JSON."),
    ) -> None:
        """Write DICOM CT + PET per timepoint and ground_truth.json (see docs/phantom.md)."""
        from oncohybrid.cli.main import fail
        from oncohybrid.phantom import generate_cohort

        try:
            if as_json:
                truth = generate_cohort(
                    out, patients=patients, timepoints=timepoints, vendor=vendor, seed=seed,
                    noise_free=noise_free, size=size,
                )
            else:
                from rich.console import Console
                from rich.progress import Progress

                with Progress(console=Console(stderr=True), transient=True) as bar:
                    task = bar.add_task("phantom", total=patients * timepoints * 2)

                    def step(message: str) -> None:
                        bar.update(task, advance=1, description=message)

                    truth = generate_cohort(
                        out, patients=patients, timepoints=timepoints, vendor=vendor,
                        seed=seed, noise_free=noise_free, size=size, progress=step,
                    )
        except OncohybridError as exc:
            fail(exc)
            return
        if as_json:
            typer.echo(json.dumps(truth, indent=2))
            return
        n_lesions = sum(len(p["lesion_ids"]) for p in truth["patients"])
        typer.echo(
            f"wrote {patients} patient(s) × {timepoints} timepoint(s), {n_lesions} lesions, "
            f"to {out} (ground truth: {Path(out) / 'ground_truth.json'})"
        )
