"""One section per benchmark in ``docs/benchmarks.md``: replace it in place, keep the others.

Shared by every script under ``benchmarks/`` so a run rewrites only its own results.
"""

from __future__ import annotations

from pathlib import Path

DOCS_FILE = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def replace_section(document: str, section: str, heading: str) -> str:
    """``document`` with the ``heading`` section (up to the next ``## `` or ``# `` heading)
    replaced by ``section``, or ``section`` appended when there is none."""
    lines = document.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "# "))),
        len(lines),
    )
    before = "\n".join(lines[:start]).rstrip("\n")
    after = "\n".join(lines[end:]).strip("\n")
    new = (before + "\n\n" if before else "") + section.rstrip("\n") + "\n"
    return new + ("\n" + after + "\n" if after else "")


def write_section(section: str, heading: str, path: Path = DOCS_FILE) -> None:
    """Write ``section`` under ``heading`` into ``path`` atomically (a crash leaves the old
    file whole)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(replace_section(text, section, heading))
    tmp.replace(path)


def write_table_section(
    heading: str,
    command: str,
    text: str,
    columns: list[str],
    rows: list[list[str]],
    left: int = 1,
    path: Path = DOCS_FILE,
) -> None:
    """Write a section of one markdown table: when and where it ran (date, machine, torch
    threads), the ``command`` that made it, ``text`` about it, then ``rows`` under ``columns``
    (the first ``left`` columns left-aligned, the rest right-aligned)."""
    import platform
    from datetime import date

    import torch

    threads = torch.get_num_threads()
    lines = [
        heading,
        "",
        f"Run on {date.today()} ({platform.machine()}, {threads} thread{'s' * (threads != 1)}): "
        f"`{command}`. {text}",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * left + "---:|" * (len(columns) - left),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    write_section("\n".join(lines), heading, path)
