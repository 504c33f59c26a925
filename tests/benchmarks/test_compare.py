"""benchmarks/compare.py: the section it writes, and one compressor measured for real."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import benchmark_script


@pytest.fixture(scope="module")
def compare():
    with benchmark_script("compare") as module:
        yield module


def _row(compare, name: str, per_frame: float):
    return compare.Row(name, "tiny-longva", per_frame, 8 * per_frame, 200, 0.2, 0.0, 3.0, 0, 400)


def test_replace_section_keeps_the_others(compare) -> None:
    doc = "# Benchmarks\n\n## Decoding\n\ntable A\n\n## Compressors\n\ntable B\n"
    first = compare.replace_section(doc, compare.HEADING + "\n\nold table\n")
    assert first.startswith(doc.rstrip("\n")) and first.endswith("old table\n")
    # Between two sections: replaced, the neighbours kept byte for byte.
    middle = f"# B\n\n## Decoding\n\ntable A\n\n{compare.HEADING}\n\nold\n\n## Compressors\n\nB\n"
    second = compare.replace_section(middle, compare.HEADING + "\n\nnew table\n")
    assert "old" not in second
    expected = f"# B\n\n## Decoding\n\ntable A\n\n{compare.HEADING}\n\nnew table\n\n## "
    assert second == expected + "Compressors\n\nB\n"
    assert second.count(compare.HEADING) == 1


def test_markdown_says_accuracy_is_chance_when_untrained(compare, tmp_path: Path) -> None:
    rows = [_row(compare, "none", 16.0), _row(compare, "longva", 4.0)]
    text = compare.markdown(rows, [8], [0.5], trained=False)
    assert text.startswith(compare.HEADING)
    assert "accuracy columns are chance" in text
    assert "| longva | tiny-longva | 4.0 | 32 |" in text
    assert "chance" not in compare.markdown(rows, [8], [0.5], trained=True)
    compare.plot(rows, tmp_path / "plot.png", trained=False)
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_measure_one_compressor_on_real_assets(compare, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compare, "CACHE", tmp_path)
    row = compare.measure("longva", frames=[4], depths=[0.5], repeats=1)
    assert row.compressor == "longva" and row.tokens_per_frame == 4.0  # 4x4 patches, stride 2
    assert row.visual_tokens == 4 * compare.QA_FRAMES
    assert row.prompt_tokens > row.visual_tokens
    assert 0.0 <= row.qa_accuracy <= 1.0 and 0.0 <= row.vniah_accuracy <= 1.0
    assert row.prefill_ms > 0 and row.peak_rss_mb > 0
