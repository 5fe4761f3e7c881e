"""Write compress/models/presets/catalog.json: each built-in preset's class, description and parameter counts,
counted on the meta device, so `compress inspect PRESET` answers without importing torch.

    python scripts/write_preset_catalog.py          # after adding or changing a built-in preset

tests/models/test_preset_catalog.py recounts every entry and fails while the file is stale.
"""

from __future__ import annotations

import json

from compress.models.auto import CATALOG, count_preset
from compress.models.builtin import BUILTIN_PRESETS


def catalog() -> dict[str, dict]:
    return {preset.name: count_preset(preset.name) for preset in sorted(BUILTIN_PRESETS, key=lambda p: p.name)}


if __name__ == "__main__":
    CATALOG.write_text(json.dumps(catalog(), indent=1) + "\n")
    print(f"wrote {CATALOG}")
