"""Compare two folders of reference runs (scripts/reference_runs.sh) file by file, timing fields aside.

    python scripts/reference_digest.py BEFORE AFTER

Figures must be byte-identical; weights and training states too, but for the order of the metadata table in a
safetensors header, which the library writes in hash order (it differs between two runs of the same code): a
safetensors file is compared as its header, keys sorted, and its data bytes. JSON and JSON-lines files are compared after
dropping what measures time or names the machine (`seconds`, `images_per_s`, `versions`) and writing each
folder's own path as ROOT; HTML reports after dropping the sentence and the column that give training seconds;
printed output after writing the folder as ROOT and dropping timings. Prints one line per differing file and
exits 1 if any differ.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import sys
from pathlib import Path

TIMING_KEYS = {"seconds", "images_per_s", "versions"}


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _json_text(text: str) -> str:
    return json.dumps(_strip(json.loads(text)), sort_keys=True)


def _html(text: str) -> str:
    text = re.sub(r"<p>\d+ epochs, [^<]* s of training, median [^<]* training images/s\.</p>", "", text)
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", text)
    if header and "<th>train s</th>" in header.group(1):  # the study's table: drop its seconds column
        column = re.findall(r"<th>(.*?)</th>", header.group(1)).index("train s")

        def drop(row: re.Match) -> str:
            cells = re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row.group(1))
            return "<tr>" + "".join(c for i, c in enumerate(cells) if i != column) + "</tr>"

        text = re.sub(r"<tr>(.*?)</tr>", drop, text)
    return text


def _safetensors(raw: bytes) -> bytes:
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    return json.dumps(header, sort_keys=True).encode() + raw[8 + size :]


def normalized(path: Path, root: Path) -> bytes:
    raw = path.read_bytes()
    name = path.name
    if name.endswith(".safetensors"):
        return _safetensors(raw)
    if name.endswith((".json", ".jsonl", ".html", ".stdout")):
        text = raw.decode().replace(str(root), "ROOT")
        if name.endswith(".json"):
            text = _json_text(text)
        elif name.endswith(".jsonl"):
            text = "\n".join(_json_text(line) for line in text.splitlines() if line.strip())
        elif name.endswith(".html"):
            text = _html(text)
        else:
            text = re.sub(r"\d+(\.\d+)? ?s\b", "<time>", text)
        return text.encode()
    return raw


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(normalized(p, root)).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def main(before: str, after: str) -> int:
    a, b = digest(Path(before).resolve()), digest(Path(after).resolve())
    bad = 0
    for name in sorted(set(a) | set(b)):
        if a.get(name) != b.get(name):
            what = "only before" if name not in b else "only after" if name not in a else "differs"
            print(f"{what}: {name}")
            bad += 1
    print(f"{len(set(a) | set(b))} files, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
