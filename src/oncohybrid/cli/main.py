"""The ``oncohybrid`` command.

Each area registers its commands from its own module (``cli/<area>.py``) through
``register(app)``; a module that is absent or fails to import for a missing optional
dependency does not break the other commands.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from oncohybrid import __version__
from oncohybrid.errors import OncohybridError

app = typer.Typer(
    name="oncohybrid",
    help="Quantitative hybrid imaging in oncology (PET-CT, CT, MRI): ingest, quantify, "
    "assess response, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, soft_wrap=True)

# Modules under oncohybrid.cli that define ``register(app: typer.Typer)``.
COMMAND_MODULES = [
    "store_cmds",  # ingest, ls, db
    "phantom_cmds",  # phantom
    "suv_cmds",  # suv
    "quant_cmds",  # quantify
    "response_cmds",  # respond
    "assess_cmds",  # assess
    "pacs_cmds",  # listen, pacs ...
    "web_cmds",  # serve, user
    "demo_cmds",  # demo
    "report_cmds",  # report (tumour-board PDF, meeting pack, SR/SEG)
    "radiomics_cmds",  # radiomics (IBSI features)
    "segment_cmds",  # segment, segment-eval (AI model runner, autoPET metrics)
    "batch_cmds",  # batch assess|quantify (Dask distributed, recorded tasks)
    "stats_cmds",  # stats (kappa, icc, bland-altman, roc, km, cox, table1, accuracy, mcnemar)
    "deid_cmds",  # deid (PS3.15 de-identification, PET-safe)
    "dect_cmds",  # dect calibrate|iodine (dual-energy CT: iodine, VNC, VMI)
    "ceus_cmds",  # ceus tic (contrast-ultrasound time-intensity curves, bolus fits)
    "dwi_cmds",  # dwi adc (diffusion MR: ADC Parametric Map, ROI statistics)
    "board_cmds",  # board create|session|add|pack|decide|minutes (tumour boards, #15)
    "teach_cmds",  # teach capture|export|import|ls (teaching file, #14)
    "study_cmds",  # study … (research studies, cohorts, CRFs, export, #16)
    "breast_cmds",  # breast audit|report (BI-RADS, #21)
    "nm_cmds",  # spect, dosimetry (nuclear medicine beyond FDG, #20)
    "qc_cmds",  # qc iec|… (scanner QC and EARL harmonisation, #20)
    "fellowship_cmds",  # fellowship call|eligibility|grant|certificate|verify (#13)
]


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"oncohybrid.cli.{_name}")
    except ModuleNotFoundError as exc:  # area not built yet
        if exc.name != f"oncohybrid.cli.{_name}":
            raise
        continue
    _mod.register(app)


def fail(exc: OncohybridError) -> None:
    """Print an expected error without a traceback and exit with its code."""
    err_console.print(f"error: {exc}", highlight=False, markup=False)
    raise typer.Exit(exc.exit_code)


def main() -> None:  # pragma: no cover - console entry point alternative
    try:
        app()
    except OncohybridError as exc:
        err_console.print(f"error: {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # python -m oncohybrid.cli.main
    app()
