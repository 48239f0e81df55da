"""A short Markdown report: headings, text, pictures and tables, written atomically.

Pictures are linked relative to the report's folder, so the folder can be moved or zipped
as a whole and still renders (GitHub, VS Code, any Markdown viewer).

    report = Report("outputs/demo/report.md", "Reconstruction of sample_scenes/object")
    report.table([{"method": "dense", "registered": 12}, {"method": "SIFT", "registered": 11}])
    report.image("outputs/demo/reconstruction.png", "points and cameras")
    report.write()
"""

import math
import os
from pathlib import Path

from recon_match.fileio import atomic_path


class Report:
    """Collects Markdown blocks; `write()` saves them to `path`."""

    def __init__(self, path, title: str):
        self.path = Path(path)
        self.blocks = [f"# {title}"]

    def heading(self, text: str, level: int = 2) -> "Report":
        self.blocks.append(f"{'#' * level} {text}")
        return self

    def text(self, markdown: str) -> "Report":
        self.blocks.append(markdown.strip())
        return self

    def image(self, path, caption: str = "") -> "Report":
        """Embed the picture at `path` (linked relative to the report); a missing picture is
        noted in the report rather than left as a broken link."""
        path = Path(path)
        if not path.is_file():
            self.blocks.append(f"*(picture missing: {path.name})*")
            return self
        rel = Path(os.path.relpath(path.resolve(), self.path.parent.resolve())).as_posix()
        self.blocks.append(f"![{caption or path.stem}]({rel})" + (f"\n\n*{caption}*" if caption else ""))
        return self

    def table(self, rows: list, columns: list | None = None, digits: int = 3) -> "Report":
        """A table from a list of dicts (one per row); columns default to the keys in order of
        first appearance; floats are shown with `digits` significant digits."""
        if not rows:
            self.blocks.append("*(no rows)*")
            return self
        columns = columns or list(dict.fromkeys(k for r in rows for k in r))
        lines = ["| " + " | ".join(_cell(c, digits) for c in columns) + " |",
                 "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(_cell(r.get(c, ""), digits) for c in columns) + " |"
                  for r in rows]
        self.blocks.append("\n".join(lines))
        return self

    def markdown(self) -> str:
        return "\n\n".join(self.blocks) + "\n"

    def write(self) -> Path:
        with atomic_path(self.path) as tmp:
            tmp.write_text(self.markdown(), encoding="utf-8")
        return self.path


def _cell(value, digits: int) -> str:
    if isinstance(value, float):
        value = "–" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value).replace("|", "\\|").replace("\n", " ")
