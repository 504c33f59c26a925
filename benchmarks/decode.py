"""Decoding benchmark: sampling N frames from long videos, longvid against its baselines.

What it measures
    Wall-clock time to get N uniformly sampled RGB frames (uint8, H x W x 3) out of a long
    H.264 video, for 1, 10 and 30 minute videos and N in 8, 32, 128. Four methods are timed
    side by side in one run, interleaved (every repeat runs each method once, in turn):

    * ``longvid exact`` -- ``longvid.io.video.sample(path, uniform(n))``: the exact frames.
    * ``longvid fast``  -- ``sample(path, uniform(n), exact=False)``: each target snapped to its
      nearest keyframe (so other frames than the exact ones).
    * ``naive``         -- PyAV, ``thread_type = "AUTO"``, decode every frame of the file in
      order and convert to RGB only the frames at the indices longvid's exact mode returned.
    * ``decord``        -- decord 0.6.0, the decoder of the reference systems:
      ``VideoReader(path, ctx=cpu(0), num_threads=0).get_batch(indices).asnumpy()`` at the same
      indices; building the ``VideoReader`` is inside the timed region, as it is in those
      systems.

    Every run starts cold as far as the decoders go: each one opens the file afresh and no reader
    object is reused between runs (the operating system's file cache is not dropped). Reported
    times are medians of ``--repeats`` runs (default 3).

    Correctness, checked on the first run of every (video, N): the longvid exact frames must equal
    the naive frames exactly (``np.array_equal``; the benchmark stops otherwise), and the mean
    absolute difference against decord is reported, not asserted (decord converts to RGB with its
    own colour conversion).

Baseline
    decord is the baseline: speed-ups are ``decord time / longvid time`` (> 1 means longvid is
    faster), alongside ``naive time / longvid time``. The targets checked are those of the
    issue: longvid exact >= 1.5x decord at 30 min and >= 1.0x at 1 min, >= 10x naive at 30 min,
    growth of its time from 1 to 30 min <= 1.5x; longvid fast >= 10x decord at 30 min -- each at
    N=32 and at N=128, a target passing only if it passes at both.

The videos
    Built on first use by ``benchmarks/_videos.py`` from the real assets in
    ``shared/assets/video`` (looped and re-encoded: H.264 High, libx264 veryfast, 640x360,
    yuv420p, constant 24 fps, a keyframe every 250 frames, x264's default B-frames) and cached in
    ``build/bench-videos/``.

How to run
    ``make bench-decode`` (installs decord through the ``bench`` extra, then runs this file), or
    ``.venv/bin/python benchmarks/decode.py [--minutes 1 10 30] [--frames 8 32 128]
    [--repeats 3] [--methods exact fast naive decord] [--no-write]``.
    Unless ``--no-write`` is given the result tables replace the section
    ``## Decoding (make bench-decode)`` of ``docs/benchmarks.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _docs import write_section  # noqa: E402
from _videos import CACHE_DIR, REPO_ROOT, build_long_video  # noqa: E402

DOCS_FILE = REPO_ROOT / "docs" / "benchmarks.md"
SECTION_HEADING = "## Decoding (make bench-decode)"
METHODS = ("exact", "fast", "naive", "decord")
METHOD_LABELS = {
    "exact": "longvid exact",
    "fast": "longvid fast",
    "naive": "naive PyAV",
    "decord": "decord",
}
TARGET_NS = (32, 128)

console = Console(width=max(Console().width, 150))


# --------------------------------------------------------------------------- methods


@dataclass
class Output:
    frames: np.ndarray
    indices: np.ndarray | None = None


def run_exact(path: Path, n: int, indices: np.ndarray | None) -> Output:
    from longvid.io.video import sample, uniform

    clip = sample(path, uniform(n))
    return Output(np.asarray(clip.frames), np.asarray(clip.indices, dtype=np.int64))


def run_fast(path: Path, n: int, indices: np.ndarray | None) -> Output:
    from longvid.io.video import sample, uniform

    clip = sample(path, uniform(n), exact=False)
    return Output(np.asarray(clip.frames), np.asarray(clip.indices, dtype=np.int64))


def run_naive(path: Path, n: int, indices: np.ndarray | None) -> Output:
    assert indices is not None
    wanted = np.asarray(indices, dtype=np.int64)
    targets: dict[int, list[int]] = {}
    for pos, idx in enumerate(wanted.tolist()):
        targets.setdefault(idx, []).append(pos)
    frames: list[np.ndarray | None] = [None] * len(wanted)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            slots = targets.get(i)
            if slots is not None:
                rgb = frame.to_ndarray(format="rgb24")
                for pos in slots:
                    frames[pos] = rgb
    missing = [int(wanted[p]) for p, f in enumerate(frames) if f is None]
    if missing:
        raise RuntimeError(f"naive decode never reached frame indices {missing[:5]}")
    return Output(np.stack(frames), wanted)  # type: ignore[arg-type]


def run_decord(path: Path, n: int, indices: np.ndarray | None) -> Output:
    import decord

    assert indices is not None
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=0)
    frames = reader.get_batch([int(i) for i in indices]).asnumpy()
    del reader
    return Output(frames, np.asarray(indices, dtype=np.int64))


RUNNERS: dict[str, Callable[[Path, int, np.ndarray | None], Output]] = {
    "exact": run_exact,
    "fast": run_fast,
    "naive": run_naive,
    "decord": run_decord,
}


def fallback_indices(path: Path, n: int) -> np.ndarray:
    """Target indices when longvid's exact mode is not among the methods run.

    Asks longvid (untimed) first; without it, the centres of ``n`` equal segments.
    """
    try:
        return run_exact(path, n, None).indices  # type: ignore[return-value]
    except Exception as exc:  # longvid missing or failing: fall back, say so
        console.print(f"  note: longvid exact unavailable ({exc!r}); own uniform indices")
    with av.open(str(path)) as container:
        total = container.streams.video[0].frames
    return np.minimum(((np.arange(n) + 0.5) * total / n).astype(np.int64), total - 1)


# --------------------------------------------------------------------------- measuring


@dataclass
class Cell:
    minutes: float
    n: int
    times: dict[str, list[float]] = field(default_factory=dict)
    exact_equal: bool | None = None
    decord_mad: float | None = None
    fast_offset: float | None = None

    def median(self, method: str) -> float | None:
        t = self.times.get(method)
        return statistics.median(t) if t else None


def check_first_run(cell: Cell, outs: dict[str, Output], video: str) -> None:
    exact = outs.get("exact")
    naive = outs.get("naive")
    dec = outs.get("decord")
    fast = outs.get("fast")
    if exact is not None and naive is not None:
        same = exact.frames.shape == naive.frames.shape and np.array_equal(
            exact.frames, naive.frames
        )
        cell.exact_equal = same
        if not same:
            detail = f"shapes {exact.frames.shape} vs {naive.frames.shape}"
            if exact.frames.shape == naive.frames.shape:
                diff = np.abs(exact.frames.astype(np.int16) - naive.frames.astype(np.int16))
                bad = np.nonzero(diff.reshape(len(diff), -1).max(axis=1))[0]
                detail = (
                    f"mean abs diff {diff.mean():.4f}, {len(bad)} of {len(diff)} frames differ "
                    f"(first at index {int(exact.indices[bad[0]])})"  # type: ignore[index]
                )
            raise AssertionError(
                f"{video}, N={cell.n}: longvid exact frames differ from the naive decode: {detail}"
            )
    ref = exact if exact is not None else naive
    if ref is not None and dec is not None and ref.frames.shape == dec.frames.shape:
        cell.decord_mad = float(
            np.abs(ref.frames.astype(np.int16) - dec.frames.astype(np.int16)).mean()
        )
    if (
        exact is not None
        and fast is not None
        and exact.indices is not None
        and fast.indices is not None
        and len(fast.indices) == len(exact.indices)
    ):
        cell.fast_offset = float(np.abs(fast.indices - exact.indices).mean())


def measure(
    path: Path, minutes: float, n: int, methods: Sequence[str], repeats: int, label: str
) -> Cell:
    cell = Cell(minutes, n, {m: [] for m in methods})
    indices: np.ndarray | None = None
    if "exact" not in methods and ({"naive", "decord"} & set(methods)):
        indices = fallback_indices(path, n)
    for rep in range(repeats):
        outs: dict[str, Output] = {}
        for method in methods:
            gc.collect()
            start = time.perf_counter()
            out = RUNNERS[method](path, n, indices)
            elapsed = time.perf_counter() - start
            cell.times[method].append(elapsed)
            if method == "exact" and indices is None:
                indices = out.indices
            if rep == 0:
                outs[method] = out
            del out
        if rep == 0:
            check_first_run(cell, outs, label)
        outs.clear()
        line = "  ".join(f"{METHOD_LABELS[m]} {cell.times[m][-1]:.3f} s" for m in methods)
        console.print(f"  {label} N={n} run {rep + 1}/{repeats}: {line}", highlight=False)
    return cell


# --------------------------------------------------------------------------- reporting


def _fmt_s(t: float | None) -> str:
    return "-" if t is None else f"{t:.3f}"


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


def _fmt_x(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def _fmt_min(minutes: float) -> str:
    return f"{minutes:g} min"


MAIN_COLUMNS = [
    "video length",
    "N",
    "longvid exact s",
    "longvid fast s",
    "naive s",
    "decord s",
    "decord/longvid",
    "naive/longvid",
    "decord/longvid-fast",
]


def main_rows(cells: list[Cell]) -> list[list[str]]:
    rows = []
    for c in cells:
        ex, fa, na, de = (c.median(m) for m in METHODS)
        rows.append(
            [
                _fmt_min(c.minutes),
                str(c.n),
                _fmt_s(ex),
                _fmt_s(fa),
                _fmt_s(na),
                _fmt_s(de),
                _fmt_x(_ratio(de, ex)),
                _fmt_x(_ratio(na, ex)),
                _fmt_x(_ratio(de, fa)),
            ]
        )
    return rows


def growth(cells: list[Cell], method: str, n: int, lo: float, hi: float) -> float | None:
    by = {(c.minutes, c.n): c for c in cells}
    a, b = by.get((lo, n)), by.get((hi, n))
    if a is None or b is None:
        return None
    return _ratio(b.median(method), a.median(method))


def growth_rows(
    cells: list[Cell], methods: Sequence[str], ns: Sequence[int], lo: float, hi: float
) -> list[list[str]]:
    return [[str(n)] + [_fmt_x(growth(cells, m, n, lo, hi)) for m in methods] for n in ns]


def check_rows(cells: list[Cell]) -> list[list[str]]:
    rows = []
    for c in cells:
        rows.append(
            [
                _fmt_min(c.minutes),
                str(c.n),
                "-" if c.exact_equal is None else ("yes" if c.exact_equal else "NO"),
                "-" if c.decord_mad is None else f"{c.decord_mad:.3f}",
                "-" if c.fast_offset is None else f"{c.fast_offset:.1f}",
            ]
        )
    return rows


CHECK_COLUMNS = [
    "video length",
    "N",
    "exact == naive",
    "mean abs diff exact vs decord",
    "fast: mean index offset",
]


@dataclass
class Target:
    text: str
    values: dict[int, float | None]
    threshold: float
    lower_is_better: bool = False

    def passes(self, v: float | None) -> bool | None:
        if v is None:
            return None
        return v <= self.threshold if self.lower_is_better else v >= self.threshold

    def verdict(self) -> str:
        results = [self.passes(v) for v in self.values.values()]
        if not results or any(r is None for r in results):
            return "n/a"
        return "PASS" if all(results) else "FAIL"

    def line(self) -> str:
        parts = []
        for n, v in self.values.items():
            p = self.passes(v)
            mark = "n/a" if p is None else ("pass" if p else "fail")
            parts.append(f"N={n}: {_fmt_x(v)} {mark}")
        return f"{self.text}: {', '.join(parts)} -> **{self.verdict()}**"


def targets(cells: list[Cell]) -> list[Target]:
    by = {(c.minutes, c.n): c for c in cells}

    def r(num: str, den: str, minutes: float, n: int) -> float | None:
        c = by.get((minutes, n))
        return None if c is None else _ratio(c.median(num), c.median(den))

    ns = TARGET_NS
    return [
        Target(
            "exact >= 1.5x decord at 30 min (decord/longvid)",
            {n: r("decord", "exact", 30, n) for n in ns},
            1.5,
        ),
        Target(
            "exact >= 1.0x decord at 1 min (decord/longvid)",
            {n: r("decord", "exact", 1, n) for n in ns},
            1.0,
        ),
        Target(
            "exact >= 10x naive at 30 min (naive/longvid)",
            {n: r("naive", "exact", 30, n) for n in ns},
            10.0,
        ),
        Target(
            "exact growth 30 min / 1 min <= 1.5x",
            {n: growth(cells, "exact", n, 1, 30) for n in ns},
            1.5,
            lower_is_better=True,
        ),
        Target(
            "fast >= 10x decord at 30 min (decord/longvid-fast)",
            {n: r("decord", "fast", 30, n) for n in ns},
            10.0,
        ),
    ]


def rich_table(title: str, columns: Sequence[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def md_table(columns: Sequence[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    out.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|")
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def machine() -> str:
    name = platform.processor()
    if not name:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    name = name or platform.machine() or "unknown CPU"
    return f"{name} ({platform.machine()}), {os.cpu_count()} cores, {platform.system()}"


def versions() -> str:
    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    lavc = ".".join(str(x) for x in av.library_versions.get("libavcodec", ()))
    try:
        import decord

        dec = decord.__version__
    except ImportError:
        dec = "not installed"
    return (
        f"PyAV {av.__version__} (FFmpeg {ffmpeg or '?'}, libavcodec {lavc}), "
        f"decord {dec}, numpy {np.__version__}, Python {platform.python_version()}"
    )


def write_docs(section: str, path: Path = DOCS_FILE) -> None:
    """Replace (or append) the decoding section of ``docs/benchmarks.md``, keeping the rest."""
    write_section(section, SECTION_HEADING, path)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time longvid's frame sampling against naive PyAV decoding and decord.",
    )
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 30])
    p.add_argument("--frames", type=int, nargs="+", default=[8, 32, 128])
    p.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is kept")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--no-write", action="store_true", help=f"don't update {DOCS_FILE.name}")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    args.methods = [m for m in METHODS if m in args.methods]
    args.minutes = [int(m) if float(m).is_integer() else m for m in args.minutes]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    methods: list[str] = args.methods
    t0 = time.perf_counter()

    videos = {m: build_long_video(m, CACHE_DIR) for m in args.minutes}
    build_s = time.perf_counter() - t0
    console.print(f"videos ready in {build_s:.0f} s: " + ", ".join(p.name for p in videos.values()))

    cells: list[Cell] = []
    t1 = time.perf_counter()
    for minutes, path in videos.items():
        for n in args.frames:
            cells.append(measure(path, minutes, n, methods, args.repeats, _fmt_min(minutes)))
    run_s = time.perf_counter() - t1

    title = (
        f"Sampling N frames, median of {args.repeats} cold runs "
        "(seconds; ratios > 1: longvid faster)"
    )
    console.print(rich_table(title, MAIN_COLUMNS, main_rows(cells)))
    lo, hi = min(args.minutes), max(args.minutes)
    growth_cols = ["N"] + [f"{METHOD_LABELS[m]} {hi:g}/{lo:g} min" for m in methods]
    g_rows = growth_rows(cells, methods, args.frames, lo, hi)
    if lo != hi:
        console.print(
            rich_table(f"Growth of the time, {hi:g} min / {lo:g} min", growth_cols, g_rows)
        )
    console.print(rich_table("Checks (first run of each cell)", CHECK_COLUMNS, check_rows(cells)))
    tgs = targets(cells)
    for t in tgs:
        console.print(t.line().replace("**", ""), highlight=False)
    console.print(f"measuring took {run_s:.0f} s", highlight=False)

    if args.no_write:
        return 0
    today = _dt.date.today().isoformat()
    parts = [
        SECTION_HEADING,
        "",
        f"Run on {today}; {machine()}; {versions()}.",
        "",
        "Produced by `benchmarks/decode.py` (see its docstring). Videos: the assets of "
        "`shared/assets/video` looped and re-encoded to H.264 (libx264 veryfast, 640x360, "
        "yuv420p, 24 fps constant, a keyframe every 250 frames, default B-frames). N frames "
        "sampled uniformly (`uniform(n)`); naive and decord decode the indices longvid's exact "
        f"mode returned. Times in seconds, median of {args.repeats} runs, each opening the file "
        "afresh; ratios are baseline time / longvid time (> 1: longvid faster). Methods run: "
        + ", ".join(METHOD_LABELS[m] for m in methods)
        + ".",
        "",
        md_table(MAIN_COLUMNS, main_rows(cells)),
        "",
    ]
    if lo != hi:
        parts += [
            f"Growth of the time from the {lo:g} min to the {hi:g} min video:",
            "",
            md_table(growth_cols, g_rows),
            "",
        ]
    parts += [
        "Checks on the first run of each cell (exact must equal naive; decord's difference is "
        "reported only):",
        "",
        md_table(CHECK_COLUMNS, check_rows(cells)),
        "",
        "Targets: exact ≥ 1.5× decord at 30 min and ≥ 1.0× at 1 min, ≥ 10× naive at 30 min, "
        "growth 30/1 ≤ 1.5×; fast ≥ 10× decord at 30 min "
        f"(each checked at N={TARGET_NS[0]} and N={TARGET_NS[1]}; PASS only if both pass):",
        "",
    ]
    parts += [f"- {t.line()}" for t in tgs]
    write_docs("\n".join(parts) + "\n")
    console.print(f"wrote {DOCS_FILE.relative_to(REPO_ROOT)}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
