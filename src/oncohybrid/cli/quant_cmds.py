"""``oncohybrid quantify``: PET lesion and whole-body metrics with PERCIST references."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("quantify")(quantify)


def _parse_point(text: str | None, option: str) -> tuple[float, float, float] | None:
    from oncohybrid.errors import InputError

    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise InputError(f"{option} {text!r}: expected X,Y,Z in LPS millimetres")
    return values  # type: ignore[return-value]


def quantify(
    pet_series: Path = typer.Argument(..., help="Directory holding one PET series."),
    ct: Path | None = typer.Option(
        None,
        "--ct",
        help="CT series (same frame of reference) for automatic liver / blood-pool placement.",
    ),
    method: str = typer.Option("percist", "--method", help="percist | suv2.5 | suv4 | 41pct"),
    liver_centre: str | None = typer.Option(
        None, "--liver-centre", help="Liver sphere centre X,Y,Z (LPS mm)."
    ),
    blood_pool_centre: str | None = typer.Option(
        None, "--blood-pool-centre", help="Blood-pool cylinder centre X,Y,Z (LPS mm)."
    ),
    connectivity: int = typer.Option(26, "--connectivity", help="6, 18 or 26."),
    min_volume_ml: float = typer.Option(
        0.5, "--min-volume-ml", help="Drop lesions smaller than this (ml)."
    ),
    background_corrected: bool = typer.Option(
        False,
        "--background-corrected",
        help="41pct: threshold at background + 41% of (SUVmax - background).",
    ),
    exclude_physiological: str | None = typer.Option(
        None,
        "--exclude-physiological",
        help="Organs whose physiological uptake is not a lesion: heart,bladder,kidneys,brain "
        "(default: all four for whole-body FDG, none otherwise).",
    ),
    no_exclude_physiological: bool = typer.Option(
        False, "--no-exclude-physiological", help="Keep physiological uptake as lesions."
    ),
    allow_tracer_mismatch: bool = typer.Option(
        False,
        "--allow-tracer-mismatch",
        help="Apply PERCIST thresholds to a tracer/modality PERCIST is not valid for.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
    seg_out: Path | None = typer.Option(
        None, "--seg-out", help="Write the lesions as a DICOM SEG file."
    ),
) -> None:
    """SUVmax/peak/mean, MTV, TLG per lesion; TMTV, TLG, Dmax; liver and blood-pool references."""
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.services.quantify import quantify_pet, write_lesion_seg

    try:
        organs = None
        if no_exclude_physiological:
            if exclude_physiological is not None:
                raise InputError("--exclude-physiological and --no-exclude-physiological "
                                 "exclude each other")
            organs = ()
        elif exclude_physiological is not None:
            from oncohybrid.detect.physiological import parse_organs

            try:
                organs = parse_organs(exclude_physiological)
            except ValueError as exc:
                raise InputError(f"--exclude-physiological {exclude_physiological!r}: {exc}") \
                    from exc
        kwargs = dict(
            exclude_physiological=organs,
            allow_tracer_mismatch=allow_tracer_mismatch,
            ct_source=ct,
            method=method,
            liver_centre_lps_mm=_parse_point(liver_centre, "--liver-centre"),
            blood_pool_centre_lps_mm=_parse_point(blood_pool_centre, "--blood-pool-centre"),
            connectivity=connectivity,
            min_volume_ml=min_volume_ml,
            background_corrected=background_corrected,
        )
        if as_json:
            result = quantify_pet(pet_series, **kwargs)  # type: ignore[arg-type]
        else:
            from rich.progress import Progress, SpinnerColumn, TextColumn

            from oncohybrid.cli.main import err_console

            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("quantify", total=None)
                result = quantify_pet(
                    pet_series,
                    progress=lambda m: bar.update(task, description=m),
                    **kwargs,  # type: ignore[arg-type]
                )
        seg_path = write_lesion_seg(result, pet_series, seg_out) if seg_out else None
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    doc = result.to_json()
    doc["seg_file"] = None if seg_path is None else str(seg_path)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    _print_table(doc)


def _print_table(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    tr = doc.get("tracer")
    con.print(f"tracer: {tr['summary'] if tr else 'unknown (no readable header)'}",
              markup=False)
    refs = doc["references"]
    for name in ("liver", "blood_pool"):
        r = refs[name]
        if r:
            sul = f", SUL {r['sul_mean']:.2f} ± {r['sul_sd']:.2f}" if r["sul_mean"] else ""
            con.print(
                f"{name}: SUV {r['suv_mean']:.2f} ± {r['suv_sd']:.2f}{sul} "
                f"({r['placement']}, centre {tuple(round(v, 1) for v in r['centre_lps_mm'])})"
            )
    t = refs["percist_threshold"]
    if t:
        con.print(f"PERCIST threshold: SUL {t['threshold_sul']:.2f} ({t['formula']})")
    tab = Table(title=f"Lesions ({doc['segmentation']['method']})")
    for col in ("id", "SUVmax", "SUVpeak", "SUVmean", "MTV ml", "TLG", "centroid LPS mm"):
        tab.add_column(col)
    for les in doc["lesions"]:
        peak = les["suv_peak"]["value"]
        tab.add_row(
            str(les["lesion_id"]),
            f"{les['suv_max']:.2f}",
            "-" if peak is None else f"{peak:.2f}",
            f"{les['suv_mean']:.2f}",
            f"{les['mtv_ml']:.2f}",
            f"{les['tlg_suv_ml']:.1f}",
            ", ".join(f"{v:.1f}" for v in les["centroid_lps_mm"]),
        )
    con.print(tab)
    wb = doc["whole_body"]
    dm = "-" if wb["dmax_mm"] is None else f"{wb['dmax_mm']:.1f} mm"
    con.print(
        f"lesions {wb['lesion_count']}, TMTV {wb['tmtv_ml']:.1f} ml, "
        f"TLG {wb['total_tlg_suv_ml']:.1f}, Dmax {dm}"
    )
    phys = doc.get("physiological_exclusion") or {}
    organs = ", ".join(phys.get("organs") or []) or "none"
    con.print(f"physiological uptake excluded ({organs}): "
              f"{len(phys.get('excluded') or [])} component(s)", markup=False)
    for note in doc["notes"]:
        con.print(f"note: {note}")
    if doc.get("seg_file"):
        con.print(f"SEG written to {doc['seg_file']}")
