"""Reading the HTML that vaelab writes: the report's tables and images."""

from html.parser import HTMLParser


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts, under the title of the <h2> before it."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.heading, self.cell, self.row, self.in_h2 = "", None, None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "h2":
            self.in_h2, self.heading = True, ""
        elif tag == "table":
            self.tables[self.heading] = []
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_h2 = False
        elif tag in ("td", "th"):
            self.row.append(self.cell)
            self.cell = None
        elif tag == "tr":
            self.tables[self.heading].append(self.row)

    def handle_data(self, text):
        if self.in_h2:
            self.heading += text
        if self.cell is not None:
            self.cell += text

    def table(self, starts: str) -> list[list[str]]:
        return next(rows for title, rows in self.tables.items() if title.startswith(starts))


class Collector(HTMLParser):
    """The tags of a page in order, and the sources of its images."""

    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
