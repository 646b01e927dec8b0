"""Helper of the batch tests: ingest the phantom cohort into the current workspace."""

from __future__ import annotations

from pathlib import Path


def ingest(data: Path) -> None:
    from oncohybrid.services.ingest import Ingestor

    with Ingestor() as ing:
        ing.ingest_paths([data])


def threshold_model(folder: Path, pet_dir: Path, threshold: float = 2.5) -> Path:
    """The AI tests' tiny ONNX model (tests/ai/onnx_models.py): "lesion" exactly where
    SUV > ``threshold``, on the PET's own spacing."""
    import importlib.util

    from oncohybrid.dicom.suv import Normalisation, suv_volume
    from oncohybrid.dicom.volume import read_series

    spec = importlib.util.spec_from_file_location(
        "batch_onnx_models", Path(__file__).parents[1] / "ai" / "onnx_models.py")
    assert spec is not None and spec.loader is not None
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    vol, _ = suv_volume(read_series(pet_dir), normalisation=Normalisation.BW)
    card = {"name": "suv-threshold", "inputs": [
        {"modality": "PT", "units": "SUVbw", "normalisation": "none"}],
        "spacing_mm": [float(s) for s in vol.spacing], "patch_size": [16, 32, 32],
        "labels": {"1": "lesion"}, "overlap": 0.5}
    return models.write_onnx_folder(folder, models.suv_threshold_model(threshold=threshold),
                                    card)
