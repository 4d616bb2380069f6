"""The evidence report as a reader finds it: its sections, anchors, links, tables and the
text of each change's evidence, read with the standard library's HTML parser (from the file
written, or from the DOM a browser dumps)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Page:
    headings: list[str] = field(default_factory=list)  # every h2, in order
    ids: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # every href
    #: Each section's id and how many <svg> elements it holds.
    svgs: dict[str, int] = field(default_factory=dict)
    #: Each change (its article's id): the text of each row of its evidence.
    steps: dict[str, list[str]] = field(default_factory=dict)
    #: The exceptions table: (badge, the change it links to, the sentence) per row.
    exceptions: list[tuple[str, str, str]] = field(default_factory=list)
    #: The summary table's rows: class, then each number.
    summary: list[list[str]] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.section = ""
        self.article = ""
        self.table = ""
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.row_link = ""
        self.in_h2 = False
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.page.ids.append(str(a["id"]))
        if tag == "section":
            self.section = str(a.get("id", ""))
        elif tag == "article":
            self.article = str(a.get("id", ""))
            self.page.steps[self.article] = []
        elif tag == "table":
            self.table = str(a.get("class", ""))
        elif tag == "tr":
            self.row, self.row_link = [], ""
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag == "a" and a.get("href"):
            self.page.links.append(str(a["href"]))
            self.row_link = str(a["href"])
        elif tag == "svg":
            self.page.svgs[self.section] = self.page.svgs.get(self.section, 0) + 1
        elif tag == "h2":
            self.in_h2 = True
            self.page.headings.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.row is not None and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self._row(self.row)
            self.row = None
        elif tag == "article":
            self.article = ""
        elif tag == "h2":
            self.in_h2 = False

    def _row(self, row: list[str]) -> None:
        if self.table == "steps" and self.article and row and row[0] != "When":
            self.page.steps[self.article].append(" | ".join(row))
        elif self.table == "exceptions" and row and row[0] != "Exception":
            self.page.exceptions.append((row[0], self.row_link, row[-1]))
        elif self.table == "summary" and row:
            self.page.summary.append(row)

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self.cell is not None:
            self.cell.append(data)
        if self.in_h2:
            self.page.headings[-1] += data.strip()


def read_page(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    reader.page.text = " ".join("".join(reader.chunks).split())
    return reader.page
