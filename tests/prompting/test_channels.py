"""The time- and channel-marked captions shared by `longvid ask` and training."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from longvid.prompting.channels import channel_captions


def test_captions_mark_time_and_channel() -> None:
    captions, pieces = channel_captions(
        [0.0, 2.5, 5.0],
        ['"OPEN" in white on a red card', "", ""],
        ["hello  there", "", "bye"],
        said="speech",
    )
    assert captions == [
        '[0.0 s] on screen: "OPEN" in white on a red card | said: "hello there" ',
        None,
        '[5.0 s] said: "bye" ',
    ]
    assert pieces == [
        [("ocr", '"OPEN" in white on a red card'), ("speech", "hello there")],
        [],
        [("speech", "bye")],
    ]


text = st.text(alphabet="ab \n", max_size=6)


@given(st.lists(st.tuples(text, text), max_size=8))
def test_a_frame_has_a_caption_exactly_when_it_has_new_text(rows) -> None:
    times = [float(i) for i in range(len(rows))]
    screen = [a for a, _ in rows]
    speech = [b for _, b in rows]
    captions, pieces = channel_captions(times, screen, speech)
    for caption, kept, (a, b) in zip(captions, pieces, rows, strict=True):
        assert (caption is None) == (not a.split() and not b.split())
        assert [c for c, _ in kept] == [c for c, t in (("ocr", a), ("subtitles", b)) if t.split()]
