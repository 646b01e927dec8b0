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
        dwi: bool = typer.Option(False, "--dwi", help="Add an MR DWI study per timepoint "
                                 "(same patient and day) with known ADC per tissue."),
        dwi_encoding: str = typer.Option(
            "vendor", "--dwi-encoding", help="b-value encoding: vendor (the patient's "
            "vendor), all (standard, siemens, siemens-csa, ge, philips in turn), or one of "
            "them."),
        dwi_layout: str = typer.Option("classic", "--dwi-layout", help="classic (one MR "
                                       "image per plane) | enhanced (standard encoding)."),
        dwi_b_values: str = typer.Option("0,50,400,800", "--dwi-b-values",
                                         help="b-values in s/mm², comma-separated."),
        dwi_snr: float = typer.Option(50.0, "--dwi-snr", help="S0 / noise σ (Rician)."),
        dwi_directions: int = typer.Option(0, "--dwi-directions", help="0: trace images; "
                                           "3: three orthogonal directions per b > 0."),
    ) -> None:
        """Write DICOM CT + PET per timepoint and ground_truth.json (see docs/phantom.md);
        with --dwi also an MR DWI study per timepoint (docs/dwi.md)."""
        from oncohybrid.cli.main import fail
        from oncohybrid.errors import InputError
        from oncohybrid.phantom import generate_cohort
        from oncohybrid.phantom.dwi import ENCODINGS, add_dwi_studies

        try:
            b_values: list[float] = []
            if dwi:
                if dwi_encoding not in ("vendor", "all", *ENCODINGS):
                    raise InputError(f"--dwi-encoding must be vendor, all or one of "
                                     f"{', '.join(ENCODINGS)}, got {dwi_encoding!r}")
                if dwi_layout not in ("classic", "enhanced"):
                    raise InputError(f"--dwi-layout must be classic or enhanced, got "
                                     f"{dwi_layout!r}")
                if dwi_directions not in (0, 3):
                    raise InputError(f"--dwi-directions must be 0 or 3, got {dwi_directions}")
                if not dwi_snr > 0:
                    raise InputError(f"--dwi-snr must be positive, got {dwi_snr}")
                try:
                    b_values = [float(v) for v in dwi_b_values.split(",") if v.strip()]
                except ValueError:
                    raise InputError(f"--dwi-b-values: expected numbers like 0,50,400,800, "
                                     f"got {dwi_b_values!r}") from None
                if len(set(b_values)) < 2 or min(b_values) < 0:
                    raise InputError(f"--dwi-b-values: an ADC needs at least two different "
                                     f"b-values ≥ 0, got {dwi_b_values!r}")
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
            if dwi:
                truth = add_dwi_studies(out, truth, encoding=dwi_encoding, layout=dwi_layout,
                                        b_values=b_values, snr=dwi_snr,
                                        directions=dwi_directions, seed=seed)
        except OncohybridError as exc:
            fail(exc)
            return
        if as_json:
            typer.echo(json.dumps(truth, indent=2))
            return
        n_lesions = sum(len(p["lesion_ids"]) for p in truth["patients"])
        typer.echo(
            f"wrote {patients} patient(s) × {timepoints} timepoint(s), {n_lesions} lesions, "
            f"{'with MR DWI, ' if dwi else ''}"
            f"to {out} (ground truth: {Path(out) / 'ground_truth.json'})"
        )
