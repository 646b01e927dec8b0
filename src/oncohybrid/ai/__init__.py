"""AI segmentation runner for user-supplied models (nnU-Net v2 folders, MONAI bundles, ONNX
with a model card); loads only what the user gives it, never downloads. Pure computation."""
