"""The one error a training run reports to the user: what stops it, and what to do."""


class TrainingError(RuntimeError):
    """Training cannot start or continue: unusable experiment folder or checkpoint, NaN loss."""
