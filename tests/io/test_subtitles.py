"""Tests of longvid.io.subtitles: reading real subtitle files and aligning cues to frames."""

from __future__ import annotations

import math
import random
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from longvid.errors import SamplingError, SubtitleError
from longvid.io.subtitles import Cue, Subtitles, align, cues_between, load_subtitles

ASSETS = Path(__file__).resolve().parents[3] / "shared" / "assets"
SUBS = ASSETS / "subtitles"
needs_assets = pytest.mark.skipif(not SUBS.is_dir(), reason=f"{SUBS} is not there")

# name -> (format, cue count, first start s, last end s); counts are the README's where it
# gives one. The Aegisub file's one Dialogue line has empty text, so it yields no cue; the
# raytracer's sixth (last) Dialogue line is empty and dropped.
EXPECTED = {
    "elephantsdream_captions.en.vtt": ("vtt", 78, 15.0, 539.867),
    "elephantsdream_captions.ja.vtt": ("vtt", 77, 15.042, 540.0),
    "elephantsdream_captions.ar.vtt": ("vtt", 77, 15.042, 540.0),
    "elephantsdream_chapters.en.vtt": ("vtt", 9, 0.0, 653.0),
    "elephantsdream_descriptions.en.vtt": ("vtt", 63, 0.0, 653.0),
    "webvtt-py_sample.vtt": ("vtt", 16, 0.5, 64.3),
    "webvtt-py_sample.srt": ("srt", 5, 0.5, 23.88),
    "webvtt-py_styles_colours.vtt": ("vtt", 6, 7.12, 149.28),
    "webvtt-py_youtube_dl.vtt": ("vtt", 4, 286.07, 305.4),
    "pysubs2_ttml_example.ttml": ("ttml", 11, 0.76, 58.7),
    "pysubs2_subtitle_with_attached_images_aegisub.ass": ("ass", 0, None, None),
    "aegisub_raytracer-test1.ass": ("ass", 5, 0.0, 25.0),
    "moviepy_subtitles.srt": ("srt", 5, 0.0, 10.0),
}
# pysubs2 has no SBV reader; it reads SBV with its SubRip parser. The asset's fifth cue ends
# (0:00:16.543) before it starts (0:00:17.484), which load_subtitles refuses.
REFUSED = {"webvtt-py_sample.sbv": r"cue 5 ends \(16\.543 s\) before it starts \(17\.484 s\)"}


def _asset_names() -> list[str]:
    return sorted(p.name for p in SUBS.iterdir()) if SUBS.is_dir() else []


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _srt(*cues: tuple[str, str, str]) -> str:
    return "\n".join(f"{i}\n{a} --> {b}\n{text}\n" for i, (a, b, text) in enumerate(cues, 1))


# --- every asset ------------------------------------------------------------------------------


@needs_assets
@pytest.mark.parametrize("name", _asset_names())
def test_every_asset_loads_with_the_stated_figures(name: str) -> None:
    path = SUBS / name
    if name in REFUSED:
        with pytest.raises(SubtitleError, match=REFUSED[name]) as info:
            load_subtitles(path)
        assert name in str(info.value)
        return
    subs = load_subtitles(path)
    assert subs.path == str(path)
    assert subs.encoding in ("utf-8", "utf-8-sig")
    assert subs.cues == sorted(subs.cues, key=lambda c: (c.start, c.end))
    for cue in subs.cues:
        assert 0 <= cue.start <= cue.end
        assert cue.text and cue.text == cue.text.strip()
        assert "\r" not in cue.text
        assert not re.search(r"<[^>]*>|\{\\", cue.text), cue.text  # no tags left
    if name in EXPECTED:
        fmt, count, first, last = EXPECTED[name]
        assert subs.format == fmt
        assert len(subs.cues) == count
        if count:
            assert subs.cues[0].start == pytest.approx(first)
            assert max(c.end for c in subs.cues) == pytest.approx(last)


@needs_assets
def test_elephants_dream_english_spans_15s_to_8m59_9s() -> None:
    subs = load_subtitles(SUBS / "elephantsdream_captions.en.vtt")
    assert len(subs) == 78
    assert subs.cues[0] == Cue(15.0, 17.951, "At the left we can see...")
    assert subs.cues[-1].end == pytest.approx(8 * 60 + 59.9, abs=0.05)


@needs_assets
@pytest.mark.parametrize(
    ("name", "script"),
    [
        ("elephantsdream_captions.ja.vtt", "[\u3040-\u30ff]"),
        ("elephantsdream_captions.ar.vtt", "[\u0600-\u06ff]"),
    ],
)
def test_non_latin_text_survives_intact(name: str, script: str) -> None:
    raw = (SUBS / name).read_text(encoding="utf-8").replace("\r\n", "\n")
    subs = load_subtitles(SUBS / name)
    assert all(re.search(script, c.text) for c in subs.cues)
    for cue in subs.cues:  # every line of every cue is in the file, byte for byte
        for line in cue.text.split("\n"):
            assert line in raw
    if name.endswith(".ja.vtt"):
        assert subs.cues[0].text == "左に見えるのは…"


@needs_assets
def test_youtube_dl_vtt_loses_its_c_tags_and_inline_timestamps() -> None:
    subs = load_subtitles(SUBS / "webvtt-py_youtube_dl.vtt")
    assert [c.text for c in subs.cues] == [
        "yeah",
        "yeah\nwhat",
        "this will happen is I'm telling",
        "this will happen is I'm telling",
    ]
    assert (subs.cues[0].start, subs.cues[0].end) == (286.07, 286.47)


@needs_assets
def test_vtt_cue_identifiers_do_not_leak_into_text_and_entities_are_decoded() -> None:
    texts = [c.text for c in load_subtitles(SUBS / "webvtt-py_styles_colours.vtt").cues]
    assert texts[0] == "Musique douce"
    assert texts[2] == "Some italic and normal coloured text. By the way, 2 < 3 !"
    assert texts[4] == "-Stéphane ? Où on se gare ?"
    assert not any("sub" in t for t in texts)


@needs_assets
def test_crlf_file_gives_clean_text() -> None:
    subs = load_subtitles(SUBS / "elephantsdream_descriptions.en.vtt")
    assert subs.cues[0].text == "The orange open movie project presents"


@needs_assets
def test_srt_with_unpadded_timestamps() -> None:
    subs = load_subtitles(SUBS / "moviepy_subtitles.srt")
    assert subs.cues == [
        Cue(0.0, 1.0, "Red!"),
        Cue(2.0, 3.5, "More Red!"),
        Cue(5.0, 6.0, "Green!"),
        Cue(7.0, 8.0, "Blue"),
        Cue(9.0, 10.0, "More Blue!"),
    ]


@needs_assets
def test_aegisub_ass_with_bom_and_graphics_section() -> None:
    subs = load_subtitles(SUBS / "pysubs2_subtitle_with_attached_images_aegisub.ass")
    assert (subs.format, subs.encoding) == ("ass", "utf-8-sig")
    assert subs.cues == []  # its one Dialogue line (0:00-0:05) has no text


@needs_assets
def test_raytracer_ass_drops_its_empty_last_line() -> None:
    raw = (SUBS / "aegisub_raytracer-test1.ass").read_text(encoding="utf-8")
    assert raw.count("Dialogue:") == 6
    subs = load_subtitles(SUBS / "aegisub_raytracer-test1.ass")
    assert len(subs) == 5
    assert subs.cues[0] == Cue(0.0, 5.0, "light 2 2 2  100 0 0")


@needs_assets
def test_sbv_is_read_through_the_subrip_parser(tmp_path: Path) -> None:
    raw = (SUBS / "webvtt-py_sample.sbv").read_text(encoding="utf-8")
    first_four = raw[: raw.index("0:00:17.484")]
    subs = load_subtitles(_write(tmp_path, "four.sbv", first_four))
    assert subs.format == "sbv"
    assert [(c.start, c.end) for c in subs.cues] == [
        (0.378, 11.378),
        (11.378, 12.305),
        (13.489, 15.489),
        (15.489, 16.234),
    ]
    assert subs.cues[2].text == "Caption text #3 (line 1)\nCaption text #3 (line 2)"
    assert load_subtitles(_write(tmp_path, "four.txt", first_four), format="sbv").format == "sbv"


@needs_assets
def test_ttml_example() -> None:
    subs = load_subtitles(SUBS / "pysubs2_ttml_example.ttml")
    assert subs.cues[1].text == "that the image formed on\nthe Retina should be inverted?"


@needs_assets
def test_real_captions_shifted_onto_a_clip() -> None:
    subs = load_subtitles(SUBS / "elephantsdream_captions.en.vtt").shifted(-15.0)
    frames = np.arange(0.0, 30.0, 0.5)
    texts = align(subs, frames)
    assert len(texts) == len(frames)
    assert texts[0] == "At the left we can see..."
    emitted = [line for t in texts if t for line in t.split("\n")]
    expected = [line for c in subs.cues_between(0.0, 29.5 + 1e-9) for line in c.text.split("\n")]
    assert emitted == expected


# --- bad input ---------------------------------------------------------------------------------


def _refused(path: Path, match: str, **kwargs: object) -> SubtitleError:
    with pytest.raises(SubtitleError, match=match) as info:
        load_subtitles(path, **kwargs)  # type: ignore[arg-type]
    assert path.name in str(info.value)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.srt", "no such subtitle file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "subs.srt").mkdir()
    _refused(tmp_path / "subs.srt", "is a directory")


def test_zero_byte_file(tmp_path: Path) -> None:
    _refused(_write(tmp_path, "empty.srt", b""), r"empty subtitle file \(0 bytes\)")


def test_whitespace_only_file(tmp_path: Path) -> None:
    _refused(_write(tmp_path, "blank.vtt", "\n  \n\t\n"), "empty subtitle file")


def test_plain_prose_is_an_unknown_format(tmp_path: Path) -> None:
    prose = "It was a bright cold day in April.\nThe clocks were striking thirteen.\n"
    _refused(_write(tmp_path, "x.srt", prose), "unknown subtitle format")


def test_random_binary_is_refused(tmp_path: Path) -> None:
    data = random.Random(0).randbytes(4096)
    _refused(_write(tmp_path, "x.srt", data), "not UTF-8.*encoding=")


def test_unknown_format_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.srt", _srt(("00:00:01,000", "00:00:02,000", "hi")))
    _refused(path, "unknown subtitle format 'xyz'", format="xyz")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            _srt(("00:00:01,000", "00:00:02,000", "ok"), ("00:00:0x,000", "banana", "bad")),
            r"broken timestamps on line 6: '00:00:0x,000 --> banana'",
        ),
        (_srt(("00:00:0x,000", "banana", "bad")), "broken timestamps on line 2"),
        (_srt(("00:00:01", "00:00:02", "no milliseconds")), "broken timestamps on line 2"),
        (
            _srt(("00:00:01,000", "00:00:02,000", "ok"), ("00:00:05,000", "00:00:01,000", "back")),
            r"broken timestamps: cue 2 ends \(1\.000 s\) before it starts \(5\.000 s\)",
        ),
        ("WEBVTT\n\n00:01.000 --> 00:0x.000\nhi\n", "broken timestamps on line 3"),
    ],
    ids=["banana", "only-banana", "no-ms", "end-before-start", "vtt"],
)
def test_broken_timestamps(tmp_path: Path, content: str, match: str) -> None:
    _refused(_write(tmp_path, "broken.srt", content), match)


def _ass(*events: str) -> str:
    return (
        "[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        + "".join(e + "\n" for e in events)
    )


def test_ass_broken_and_negative_timestamps(tmp_path: Path) -> None:
    bad = _write(tmp_path, "bad.ass", _ass("Dialogue: 0,0:00:0x.00,banana,Default,,0,0,0,,hi"))
    _refused(bad, "cannot parse as ass: .*timestamp")
    neg = _write(tmp_path, "neg.ass", _ass("Dialogue: 0,-0:00:01.00,0:00:02.00,Default,,0,0,0,,x"))
    _refused(neg, r"cue 1 starts at a negative time \(-1\.000 s\)")


def test_ass_comments_and_override_tags(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "c.ass",
        _ass(
            "Comment: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,a note",
            r"Dialogue: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,{\i1}Hello{\i0}\Nworld",
        ),
    )
    assert load_subtitles(path).cues == [Cue(3.0, 4.0, "Hello\nworld")]


def test_broken_ttml(tmp_path: Path) -> None:
    path = _write(tmp_path, "x.ttml", '<tt xmlns="http://www.w3.org/ns/ttml"><body><p begin="1s"')
    _refused(path, "cannot parse as ttml")


def test_microdvd_needs_fps(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.sub", "{10}{20}Hello\n{30}{40}World|two\n")
    _refused(path, "frame rate: pass fps=")
    _refused(path, "fps must be", fps=0.0)
    subs = load_subtitles(path, fps=25.0)
    assert subs.format == "microdvd"
    assert subs.cues == [Cue(0.4, 0.8, "Hello"), Cue(1.2, 1.6, "World\ntwo")]


# --- encodings ---------------------------------------------------------------------------------

SPANISH = [
    "¿Dónde está la estación?",
    "El niño comió una manzana y después se durmió en el jardín.",
    "¡Qué día tan difícil! Mañana será otro café.",
]


def _spanish_srt() -> str:
    return _srt(
        *((f"00:00:0{2 * i},000", f"00:00:0{2 * i + 1},500", t) for i, t in enumerate(SPANISH))
    )


def test_cp1252_falls_back_with_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, "es.srt", _spanish_srt().encode("cp1252"))
    with pytest.warns(UserWarning, match=r"es\.srt: not UTF-8; decoding as") as record:
        subs = load_subtitles(path)
    assert subs.encoding in str(record[0].message)
    assert [c.text for c in subs.cues] == SPANISH
    assert "é" in subs.cues[1].text


def test_cp1252_with_a_stated_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "es.srt", _spanish_srt().encode("cp1252"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subs = load_subtitles(path, encoding="cp1252")
    assert ([c.text for c in subs.cues], subs.encoding) == (SPANISH, "cp1252")
    _refused(path, r"cannot be decoded as ascii: byte 0x\w\w at offset", encoding="ascii")
    _refused(path, "unknown text encoding 'klingon'", encoding="klingon")


def test_utf16_with_bom_needs_no_guess(tmp_path: Path) -> None:
    path = _write(tmp_path, "u16.srt", _spanish_srt().encode("utf-16"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subs = load_subtitles(path)
    assert ([c.text for c in subs.cues], subs.encoding) == (SPANISH, "utf-16")


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path, "bom.srt", b"\xef\xbb\xbf" + _spanish_srt().encode("utf-8"))
    subs = load_subtitles(path)
    assert ([c.text for c in subs.cues], subs.encoding, subs.format) == (
        SPANISH,
        "utf-8-sig",
        "srt",
    )


# --- cues_between and align --------------------------------------------------------------------


@pytest.fixture
def hand_made(tmp_path: Path) -> Subtitles:
    """A touches B at 2 s; C lies between sampled frames 4 s and 5 s; D and E overlap."""
    content = _srt(
        ("00:00:06,000", "00:00:09,000", "D"),  # out of order on purpose
        ("00:00:01,000", "00:00:02,000", "A"),
        ("00:00:02,000", "00:00:03,000", "B"),
        ("00:00:04,200", "00:00:04,400", "C"),
        ("00:00:07,000", "00:00:08,000", "E"),
        ("00:00:07,500", "00:00:07,600", " "),  # empty text: dropped
    )
    return load_subtitles(_write(tmp_path, "hand.srt", content))


def test_loaded_cues_are_sorted_and_empty_ones_dropped(hand_made: Subtitles) -> None:
    assert [c.text for c in hand_made.cues] == ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize(
    ("t0", "t1", "expected"),
    [
        (0.0, 1.0, ""),  # half-open: A starts at 1.0
        (1.0, 2.0, "A"),
        (2.0, 2.5, "B"),  # touching: A ends at 2.0, exclusive
        (1.5, 2.5, "AB"),
        (4.25, 4.3, "C"),
        (7.5, 7.6, "DE"),  # overlapping cues both kept
        (3.0, 3.0, ""),  # empty interval
        (0.0, math.inf, "ABCDE"),
    ],
)
def test_cues_between(hand_made: Subtitles, t0: float, t1: float, expected: str) -> None:
    assert "".join(c.text for c in hand_made.cues_between(t0, t1)) == expected
    assert cues_between(hand_made, t0, t1) == hand_made.cues_between(t0, t1)


@pytest.mark.parametrize(("t0", "t1"), [(math.nan, 1.0), (0.0, math.nan), (-1.0, 1.0), (2.0, 1.0)])
def test_cues_between_refuses_bad_times(hand_made: Subtitles, t0: float, t1: float) -> None:
    with pytest.raises(SamplingError):
        hand_made.cues_between(t0, t1)


def test_align_boundary_cases(hand_made: Subtitles) -> None:
    frames = [0.5, 1.0, 1.5, 2.0, 4.0, 5.0, 6.5, 7.0, 8.5, 10.0]
    assert align(hand_made, frames) == ["", "A", "", "B", "", "C", "D", "E", "", ""]
    assert align(hand_made, np.asarray(frames)) == align(hand_made, frames)


def test_align_overlapping_cues_share_a_frame(hand_made: Subtitles) -> None:
    assert align(hand_made, [5.0, 7.5]) == ["", "D\nE"]


def test_align_first_frame_gets_what_is_showing(hand_made: Subtitles) -> None:
    assert align(hand_made, [1.5, 2.5]) == ["A", "B"]
    assert align(hand_made, [2.0]) == ["B"]  # A ended at 2.0 (exclusive)
    assert align(hand_made, [3.5, 3.6]) == ["", ""]  # B ended; C not yet


def test_align_edge_inputs(hand_made: Subtitles) -> None:
    assert align(hand_made, []) == []
    assert align(hand_made, [1.0, 1.0, 1.0]) == ["A", "", ""]  # repeated timestamps
    assert align(hand_made, [0.0]) == [""]
    assert align(Subtitles(), [0.0, 1.0]) == ["", ""]


@pytest.mark.parametrize(
    "frames",
    [[math.nan], [0.0, math.inf], [-0.5, 1.0], [1.0, 2.0, 1.5], [[0.0, 1.0]], ["a"]],
    ids=["nan", "inf", "negative", "decreasing", "2-d", "text"],
)
def test_align_refuses_bad_timestamps(hand_made: Subtitles, frames: list) -> None:
    with pytest.raises(SamplingError):
        align(hand_made, frames)


def test_shifted_and_scaled(hand_made: Subtitles) -> None:
    earlier = hand_made.shifted(-2.0)  # A ends at 0 s: dropped
    assert [c.text for c in earlier.cues] == ["B", "C", "D", "E"]
    times = [t for c in earlier.cues[:2] for t in (c.start, c.end)]
    assert times == pytest.approx([0.0, 1.0, 2.2, 2.4])
    assert hand_made.shifted(-1.5).cues[0] == Cue(0.0, 0.5, "A")  # straddles 0 s: clipped
    assert hand_made.scaled(2.0).cues[0] == Cue(2.0, 4.0, "A")
    assert earlier.path == hand_made.path and earlier.format == "srt"
    for bad in (math.nan, math.inf):
        with pytest.raises(SamplingError):
            hand_made.shifted(bad)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(SamplingError):
            hand_made.scaled(bad)


def test_hand_made_cues_are_checked() -> None:
    with pytest.raises(SubtitleError):
        Cue(2.0, 1.0, "backwards")
    with pytest.raises(SubtitleError):
        Cue(math.nan, 1.0, "nan")


_cue_spans = st.lists(
    st.tuples(st.integers(0, 20_000), st.integers(0, 5_000)), max_size=25
)  # (start ms, duration ms); duration 0 gives an instant
_frame_times = st.lists(st.integers(0, 25_000), min_size=1, max_size=40).map(
    lambda ms: sorted(m / 1000 for m in ms)
)


@settings(max_examples=300, deadline=None)
@given(spans=_cue_spans, frames=_frame_times)
def test_align_emits_each_overlapping_cue_exactly_once(
    spans: list[tuple[int, int]], frames: list[float]
) -> None:
    cues = [Cue(s / 1000, (s + d) / 1000, f"c{i}") for i, (s, d) in enumerate(spans)]
    subs = Subtitles(cues=cues)
    out = align(subs, frames)
    assert len(out) == len(frames)
    where: dict[str, int] = {}
    for k, text in enumerate(out):
        for name in filter(None, text.split("\n")):
            assert name not in where, f"{name} emitted twice"
            where[name] = k
    t0, last = frames[0], frames[-1]
    for cue in subs.cues:
        overlaps = cue.start <= last and (cue.end > t0 or cue.start >= t0)
        assert (cue.text in where) == overlaps, cue
        if overlaps:  # on the first frame at or after the moment it is first seen
            k = where[cue.text]
            assert frames[k] >= max(cue.start, t0)
            assert k == 0 or frames[k - 1] < max(cue.start, t0)
    for text in out:  # cues on one frame come in start order
        names = [n for n in text.split("\n") if n]
        order = [subs.cues.index(next(c for c in subs.cues if c.text == n)) for n in names]
        assert order == sorted(order)
