"""``oncohybrid segment`` (AI segmentation with a user-supplied model → DICOM SEG) and
``oncohybrid segment-eval`` (autoPET metrics of a prediction against a reference)."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
    app.command("segment-eval")(segment_eval)


def segment(
    pet_dir: Path = typer.Argument(..., help="Directory holding one PET series (SUVbw)."),
    ct: Path | None = typer.Option(None, "--ct", help="CT series directory (HU), resampled "
                                   "onto the PET grid; needed when the model takes CT."),
    model: Path = typer.Option(..., "--model", help="Model folder: model.onnx + "
                               "oncohybrid-model.json, an nnU-Net v2 results folder or a "
                               "MONAI bundle."),
    out: Path = typer.Option(..., "--out", help="DICOM SEG file to write."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only: per label the "
                                 "volume (ml) and connected components."),
    store: bool = typer.Option(False, "--store", help="Keep the SEG in the workspace for "
                               "this PET series: `oncohybrid assess` then takes its lesion "
                               "labels as the record's lesions and its liver/aorta labels "
                               "as the PERCIST reference VOIs."),
) -> None:
    """Segment a PET(/CT) study with your own model and write a DICOM SEG (argmax mask)."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services.segment import segment_study, store_labels

    try:
        if as_json:
            doc = segment_study(pet_dir, model, out, ct_dir=ct, device=device)
        else:
            from rich.progress import Progress, SpinnerColumn, TextColumn

            from oncohybrid.cli.main import err_console

            with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                          console=err_console, transient=True) as bar:
                task = bar.add_task("segment", total=None)
                doc = segment_study(pet_dir, model, out, ct_dir=ct, device=device,
                                    progress=lambda m: bar.update(task, description=m))
        if store:
            doc["stored"] = store_labels(doc["seg_file"])
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"{doc['seg_file']}  (model {doc['model']}, {doc['layout']})")
    if store:
        typer.echo(f"  kept for PET series {doc['stored']['pet_series_uid']}: "
                   "`oncohybrid assess` uses its labels")
    for value, item in doc["labels"].items():
        typer.echo(f"  {value} {item['name']}: {item['volume_ml']:.2f} ml in "
                   f"{item['n_components']} component(s)")


def segment_eval(
    pred: Path = typer.Argument(..., help="Predicted mask: DICOM SEG or NIfTI."),
    gt: Path = typer.Argument(..., help="Reference mask: DICOM SEG or NIfTI."),
    connectivity: int = typer.Option(18, "--connectivity", help="6, 18 (autoPET) or 26."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Dice, false-positive/false-negative volume (ml), lesion sensitivity and FP per scan
    (autoPET rules: 18-connected components, any overlap counts)."""
    from oncohybrid.errors import InputError, OncohybridError
    from oncohybrid.services.segment import evaluate_masks

    try:
        if connectivity not in (6, 18, 26):
            raise InputError(f"--connectivity must be 6, 18 or 26, got {connectivity}")
        doc = evaluate_masks(pred, gt, connectivity=connectivity)
    except OncohybridError as exc:
        from oncohybrid.cli.main import fail

        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    dice = "n/a" if doc["dice"] is None else f"{doc['dice']:.4f}"
    sens = "n/a" if doc["sensitivity"] is None else f"{doc['sensitivity']:.3f}"
    typer.echo(f"Dice {dice}  FPV {doc['false_positive_volume_ml']:.2f} ml  "
               f"FNV {doc['false_negative_volume_ml']:.2f} ml  lesion sensitivity {sens} "
               f"({doc['detected_lesions']}/{doc['gt_lesions']})  "
               f"FP lesions {doc['false_positive_lesions']}")
