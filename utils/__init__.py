"""Leaf helpers: image I/O, metrics, MATLAB imresize, the checkpoint format, device choice,
CPU settings, console quieting, parallel map, training logs. They import nothing of the project."""
from utils import console  # noqa: F401,E402 -- Paddle's import stays quiet (utils/console.py)
