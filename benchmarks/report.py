"""What every benchmark does with its figures besides printing them."""
import json
import os
from typing import Any, Dict, Optional


def write_json(path: Optional[str], figures: Dict[str, Any]) -> None:
    """Write ``figures`` to ``path`` (--json), making its folder; nothing when ``path`` is None."""
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(figures, f, indent=1)
    print(f'wrote {path}')
