"""Command-line tools: official-weight conversion and alignment with the official PyTorch code."""
