"""scripts/phone_table.py: one row per student preset and mode, at both sizes on the three phone NPUs, consistent
arithmetic."""

import pytest

from compress.models.students import LIPSYNC_PRESETS
from tests.helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("phone_table")


@pytest.fixture(scope="module")
def rows(script):
    return script.rows()


def test_rows_cover_every_preset_and_mode_with_consistent_costs(rows):
    expected = [(preset, mode) for preset in LIPSYNC_PRESETS for mode in ("target", "reference")]
    assert [(r["preset"], r["mode"]) for r in rows] == expected
    for target, reference in zip(rows[::2], rows[1::2]):
        for name, chain in target["chains"].items():
            other = reference["chains"][name]
            encoder = chain["networks"]["driving-frame encoder"]["gmacs_per_frame"]
            assert chain["gmacs_per_frame"] == pytest.approx(other["gmacs_per_frame"] + encoder)
    for row in rows:
        face, portrait = (row["chains"][n] for n in ("snapdragon-8gen3", "snapdragon-8gen3-480x832"))
        assert (face["height"], portrait["width"]) == (256, 832)
        for name, network in portrait["networks"].items():
            ratio = network["gmacs_per_frame"] / face["networks"][name]["gmacs_per_frame"]
            if name == "driving-frame encoder":  # its mid-block self-attention grows with the square of the pixels
                assert 480 * 832 / 256**2 < ratio < 6.5
            else:  # convolutions follow the pixel count (6.09 times), the student's audio encoder does not
                assert 5.5 < ratio <= 480 * 832 / 256**2


def test_every_phone_counts_the_same_chain_at_its_own_throughput(script, rows):
    from compress.export.targets import load_target

    for row in rows:
        for size in ("", "-480x832"):
            base = row["chains"]["snapdragon-8gen3" + size]
            for phone in ("a17-pro", "dimensity-9300"):
                chain = row["chains"][phone + size]
                assert chain["gmacs_per_frame"] == base["gmacs_per_frame"]
                assert chain["budget"]["implied_fps"] == pytest.approx(
                    load_target(phone).budget.effective_gmacs_per_s / chain["gmacs_per_frame"])


def test_markdown_table_says_which_fit_15_fps_at_480x832(script, rows):
    lines = script.markdown(rows).splitlines()
    assert lines[0] == ("| preset | mode | 256x256 GMACs/frame | 480x832 GMACs/frame "
                        "| snapdragon-8gen3 fps (256x256 / 480x832) | a17-pro fps (256x256 / 480x832) "
                        "| dimensity-9300 fps (256x256 / 480x832) | 15 fps at 480x832 on |")
    for row, line in zip(rows, lines[2:8]):
        fps = {p: row["chains"][p + "-480x832"]["budget"]["implied_fps"] for p in script.PHONES}
        fits = ", ".join(p for p in script.PHONES if fps[p] >= 15) or "none"
        assert line.startswith(f"| {row['preset']} | {row['mode']} |")
        assert line.endswith(f" / {fps['dimensity-9300']:.1f} | {fits} |")
    assert "SD-1.5 UNet" in lines[-1] and "ml-stable-diffusion" in lines[-1]  # the budgets' sources
