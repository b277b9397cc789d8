"""The InvDN engine: training, evaluation, the denoise routine and its back ends, export,
and the command-line dialect shared by the scripts.

Layers: scripts and tools -> engine -> networks, dataloaders, losses, config, utils.
Nothing here imports a script; nothing below imports the engine.
"""
