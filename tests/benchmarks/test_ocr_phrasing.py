"""benchmarks/ocr_phrasing.py: the wordings it compares reach the prompt's OCR lines."""

from __future__ import annotations

from unittest import mock

from longvid.io import ocr
from tests.benchmarks import benchmark_script

BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def test_each_wording_is_what_the_on_screen_text_gives() -> None:
    frames = [ocr.FrameText(0.0, [ocr.TextLine("EXIT", 0.9, BOX, ("white", "green"))])]
    with benchmark_script("ocr_phrasing") as script:
        wordings = list(script.WORDINGS.values())
        assert wordings[0] is ocr.line_phrase  # the default comes first
        said = []
        for phrase in wordings:
            with mock.patch.object(ocr, "line_phrase", phrase):
                said.append(ocr.new_text(frames)[0])
    assert said == ['"EXIT" in white on a green card', '"EXIT" in white on green']
    assert ocr.new_text(frames)[0] == said[0]  # the patch is undone
