"""Deployment: the one exporter (a verified folder), the ONNX graph repair, one module per
runtime, the choice of runtime, and the cache of exports per weights file."""
import utils.console  # noqa: F401 -- first, so that Paddle's import stays quiet
