"""Shared utilities: image I/O, metrics, resizing, checkpoints, devices, denoising, training."""
