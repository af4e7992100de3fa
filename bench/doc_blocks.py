"""The generated blocks of docs/benchmarks.md: a benchmark replaces only its own block, between
marker lines, so the hand-written analysis around it stays."""

from __future__ import annotations

from pathlib import Path


def markers(name: str, script: str) -> tuple[str, str]:
    """The lines around block `name` (e.g. `outage-bench`) written by `script`."""
    return f"<!-- {name}: written by {script} -->", f"<!-- /{name} -->"


def write_block(path: Path, name: str, script: str, block: str, section: str | None) -> None:
    """Replace block `name` of `path` with `block`; a new one goes right under its `section`
    heading, or at the end (with that heading when given); a missing file is started."""
    begin, end = markers(name, script)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    generated = f"{begin}\n{block}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + generated + rest.split(end, 1)[1]
    elif section is not None and section in text:
        head, rest = text.split(section, 1)
        text = f"{head}{section}\n\n{generated}\n{rest}"
    elif section is not None:
        text = f"{text.rstrip()}\n\n{section}\n\n{generated}\n"
    else:
        text = f"{text.rstrip()}\n\n{generated}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
