"""presets/catalog.json (what `compress inspect PRESET` reads without importing torch) matches the models: every
built-in preset recounted on the meta device. Stale? Run scripts/write_preset_catalog.py."""

import json

from compress.models.auto import CATALOG, count_preset, inspect_preset
from compress.models.builtin import BUILTIN_PRESETS


def test_the_catalog_lists_every_built_in_preset_with_its_counts():
    catalog = json.loads(CATALOG.read_text())
    assert sorted(catalog) == sorted(p.name for p in BUILTIN_PRESETS)
    for name, entry in catalog.items():
        assert entry == count_preset(name), f"{name}: stale catalog; run scripts/write_preset_catalog.py"


def test_inspect_reads_the_catalog_and_counts_registered_presets_alike():
    assert inspect_preset("tiny")["model"] == {"parameters": 571_337, "bytes_by_dtype": {"bfloat16": 1_142_674},
                                               "bytes": 1_142_674}
    assert inspect_preset("test-mlp")["model"]["parameters"] == 144  # registered from Python: counted
