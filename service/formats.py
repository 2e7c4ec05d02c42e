"""Reading speeches from files: text and Markdown in any common Chinese encoding, Word, PDF, HTML.

One reader per format turns a file's bytes into text (one paragraph per line) and the metadata the
file carries; :func:`read_document` picks the reader by extension and then applies an optional
front matter block at the top of the text::

    ---
    title: 2019年政府工作报告
    speaker: 李克强
    date: 2019-03-05
    place: 北京
    ---

The front matter's lines are blanked rather than removed, so line numbers (``paragraph`` in
citations) still point at the original file. Every failure of a reader on a malformed file is a
:class:`FormatError` (a 400), never a crash: a batch reports the file and goes on.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from service.errors import InvalidInput, ServiceError

__all__ = [
    "FORMATS",
    "Extracted",
    "FormatError",
    "UnsupportedFormat",
    "decode_text",
    "format_of",
    "parse_front_matter",
    "read_document",
]


class FormatError(InvalidInput):
    """A file of a supported type that cannot be read (malformed, encrypted, no text)."""

    code = "unreadable_file"


class UnsupportedFormat(ServiceError):
    code = "unsupported_media_type"
    status = 415


@dataclass(slots=True)
class Extracted:
    text: str
    format: str
    title: str | None = None
    doc_id: str | None = None  # from front matter ``id:``
    metadata: dict[str, Any] = field(default_factory=dict)


# Extension -> format name.
FORMATS = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".docx": "docx",
    ".pdf": "pdf",
    ".html": "html",
    ".htm": "html",
}

# Decompressed size and member count a .docx may have: a zip bomb is refused before parsing.
_MAX_UNZIPPED = 256 * 1024 * 1024
_MAX_MEMBERS = 5_000
_MAX_PDF_PAGES = 5_000

# Text encodings a collection of Chinese speeches uses. Restricting the detector to these keeps
# a binary file or a mangled one from being "decoded" as some single-byte code page.
_ENCODINGS = [
    "utf_8",
    "ascii",
    "utf_16",
    "utf_16_le",
    "utf_16_be",
    "utf_32",
    "gb18030",
    "big5",
    "big5hkscs",
]
# Short texts fit several of them equally well; then mainland usage decides.
_PREFERENCE = {
    name: i
    for i, name in enumerate(
        ["utf_8", "ascii", "utf_16", "utf_32", "gb18030", "utf_16_le", "utf_16_be", "big5"]
    )
}


def format_of(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        shown = suffix or "(no extension)"
        raise UnsupportedFormat(
            f"{PurePath(filename).name}: unsupported file type {shown}; supported: "
            + ", ".join(sorted(FORMATS))
        )
    return fmt


def read_document(data: bytes, filename: str) -> Extracted:
    """Text and metadata of a file's bytes; the reader is chosen by ``filename``'s extension."""
    fmt = format_of(filename)
    name = PurePath(filename).name
    try:
        extracted = _READERS[fmt](data)
    except ServiceError as exc:
        raise FormatError(f"{name}: {exc.message}") from exc
    except Exception as exc:  # a parser's own exception on a malformed file
        raise FormatError(f"{name}: not a readable {fmt} file ({_describe(exc)})") from exc
    text, front = parse_front_matter(extracted.text)
    extracted.text = text
    if front:
        title = front.pop("title", None)
        doc_id = front.pop("id", None)
        extracted.title = title or extracted.title
        extracted.doc_id = doc_id or None
        extracted.metadata.update(front)
    if extracted.title is not None:
        extracted.title = " ".join(extracted.title.split())[:500] or None
    if not any(c.isalnum() for c in extracted.text):
        raise FormatError(f"{name}: no text found in this {fmt} file")
    return extracted


# -- plain text and Markdown ---------------------------------------------------------------------
def decode_text(data: bytes) -> tuple[str, str]:
    """(text, encoding) of a text file: UTF-8/16/32 with or without BOM, GB18030/GBK, Big5."""
    from charset_normalizer import from_bytes

    if not data:
        return "", "utf_8"
    matches = list(from_bytes(data, cp_isolation=_ENCODINGS))
    if not matches:
        raise InvalidInput(
            "cannot tell the text encoding (tried UTF-8, UTF-16, UTF-32, GB18030/GBK, Big5); "
            "is it a text file?"
        )
    # A decoding that yields control characters is a wrong guess, whatever its score.
    matches = [m for m in matches if not _CONTROL.search(str(m))] or matches
    best = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= best]
    coherent = max(m.coherence for m in tied)
    tied = [m for m in tied if m.coherence >= coherent]
    chosen = min(tied, key=lambda m: _PREFERENCE.get(m.encoding, len(_PREFERENCE)))
    return str(chosen), chosen.encoding


def _read_text(data: bytes) -> Extracted:
    text, encoding = decode_text(data)
    return Extracted(text, "text", metadata={"encoding": encoding})


def _read_markdown(data: bytes) -> Extracted:
    extracted = _read_text(data)
    extracted.format = "markdown"
    return extracted


# -- front matter --------------------------------------------------------------------------------
_FRONT = re.compile(r"\A\ufeff?---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_LINE = re.compile(r"^([^\s:：#][^:：]{0,63}?)[ \t]*[:：][ \t]*(.*?)[ \t]*$")
_MAX_FRONT_LINES = 60

# Front matter keys in Chinese, and English synonyms, to the names the filter uses.
KEY_ALIASES = {
    "标题": "title",
    "题目": "title",
    "讲话人": "speaker",
    "发言人": "speaker",
    "报告人": "speaker",
    "主讲人": "speaker",
    "author": "author",
    "作者": "author",
    "日期": "date",
    "时间": "date",
    "地点": "place",
    "会议地点": "place",
    "location": "place",
    "来源": "source",
}


def parse_front_matter(text: str) -> tuple[str, dict[str, str]]:
    """Split ``---`` front matter off the top of ``text``: (text with it blanked, its fields).

    Only a block whose every non-blank line is ``key: value`` (or a ``#`` comment) counts, so a
    Markdown rule at the top of a speech is left alone.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _FRONT.match(normalized)
    if m is None:
        return text, {}
    lines = m.group(1).split("\n")
    if len(lines) > _MAX_FRONT_LINES:
        return text, {}
    fields: dict[str, str] = {}
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        kv = _FRONT_LINE.match(stripped)
        if kv is None:
            return text, {}
        key = kv.group(1).strip().lower().replace(" ", "_")
        key = KEY_ALIASES.get(key, key)
        value = kv.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if value:
            fields[key] = value
    block = m.group(0)
    # Keep the block's line breaks so that line numbers still match the file.
    blanked = "\n" * block.count("\n") + normalized[len(block) :]
    return blanked, fields


# -- Word ----------------------------------------------------------------------------------------
def _read_docx(data: bytes) -> Extracted:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_zip(data)
    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            lines.append(block.text)
        elif isinstance(block, Table):
            lines.extend(_table_lines(block))
    props = document.core_properties
    metadata = {}
    if props.author and props.author.strip():
        metadata["author"] = props.author.strip()
    title = props.title.strip() if props.title else None
    return Extracted("\n".join(lines), "docx", title=title or None, metadata=metadata)


def _table_lines(table: Any) -> list[str]:
    out = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:  # merged cells repeat: keep one
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            out.append("　".join(cells))
    return out


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidInput("not a .docx file (not a zip archive)") from exc
    if len(members) > _MAX_MEMBERS or sum(m.file_size for m in members) > _MAX_UNZIPPED:
        raise InvalidInput("the .docx unpacks to more than 256 MB; refused")


# -- PDF -----------------------------------------------------------------------------------------
_PAGE_NUMBER = re.compile(
    r"^[\s\-—–－·]*(?:第\s*)?\d{1,3}(?:\s*页)?(?:\s*/\s*\d{1,4})?[\s\-—–－·]*$"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A line ending like this ends its paragraph; anything else may be a wrapped line.
_LINE_END = re.compile(r"[。！？；：!?;:…”’」』）)】]\s*$")
_MARKER_START = re.compile(
    r"^\s*(?:#|第[一二三四五六七八九十]+[，、：,:部章节]|[一二三四五六七八九十]+[、是要]"
    r"|[（(][一二三四五六七八九十0-9]+[）)]|[0-9]{1,2}[.．、](?![0-9]))"
)


def _read_pdf(data: bytes) -> Extracted:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except Exception as exc:
            raise InvalidInput("the PDF is encrypted") from exc
        if not ok:
            raise InvalidInput("the PDF is encrypted with a password")
    if len(reader.pages) > _MAX_PDF_PAGES:
        raise InvalidInput(f"the PDF has {len(reader.pages)} pages; the limit is {_MAX_PDF_PAGES}")
    lines: list[str] = []
    for page in reader.pages:
        page_text = _CONTROL.sub("", page.extract_text() or "")
        lines.extend(
            line for line in page_text.replace("\r", "\n").split("\n") if not _is_page_number(line)
        )
    text = "\n".join(reflow(lines))
    if not any(c.isalnum() for c in text):
        raise InvalidInput("the PDF has no text layer (a scan?); OCR is not supported")
    info = reader.metadata or {}
    metadata = {}
    author = _pdf_field(info, "/Author")
    if author:
        metadata["author"] = author
    return Extracted(text, "pdf", title=_pdf_field(info, "/Title"), metadata=metadata)


def _pdf_field(info: Any, key: str) -> str | None:
    try:
        value = info.get(key)
    except Exception:
        return None
    if value is None:
        return None
    value = " ".join(str(value).split())
    return value or None


def _is_page_number(line: str) -> bool:
    return bool(line.strip()) and bool(_PAGE_NUMBER.match(line))


def reflow(lines: list[str]) -> list[str]:
    """Join a PDF's wrapped lines back into paragraphs.

    A line continues the previous one when the previous one is about as long as a full line,
    does not end a sentence, and this one does not start an outline marker. Headings and
    paragraph ends are short or end in punctuation, so they keep their own lines.
    """
    stripped = [line.strip() for line in lines]
    lengths = sorted(_width(s) for s in stripped if s)
    if not lengths:
        return []
    full = lengths[int(len(lengths) * 0.9)] if len(lengths) >= 5 else lengths[-1]
    out: list[str] = []
    joinable = False
    for line in stripped:
        if not line:
            out.append("")
            joinable = False
            continue
        if joinable and out and not _MARKER_START.match(line):
            prev = out[-1]
            sep = " " if prev[-1:].isascii() and line[:1].isascii() else ""
            out[-1] = prev + sep + line
        else:
            out.append(line)
        joinable = _width(line) >= 0.85 * full and not _LINE_END.search(line)
    return out


def _width(line: str) -> float:
    """Display width: a CJK character is about two Latin ones."""
    return sum(1.0 if c.isascii() else 2.0 for c in line)


# -- HTML ----------------------------------------------------------------------------------------
_DROP_TAGS = ("script", "style", "noscript", "template", "svg", "nav", "aside", "form", "iframe")
_BLOCK_TAGS = (
    "address",
    "article",
    "blockquote",
    "center",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
)
_BREAK = "\u2029"  # a paragraph separator no web page uses for layout
_CJK = r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]"
# A line break of the page's source next to a Chinese character is no space (browsers disagree;
# readers do not); a space the author typed stays.
_SOURCE_BREAK = "\x1f"
_BREAK_RUN = re.compile(r"\s*\n\s*")
_CJK_GAP = re.compile(rf"(?<={_CJK}){_SOURCE_BREAK}+|{_SOURCE_BREAK}+(?={_CJK})")
_META_KEYS = {
    "author": "author",
    "speaker": "speaker",
    "date": "date",
    "dc.date": "date",
    "pubdate": "date",
    "publishdate": "date",
    "article:published_time": "date",
    "place": "place",
}


def _read_html(data: bytes) -> Extracted:
    from bs4 import BeautifulSoup, Comment, NavigableString

    soup = BeautifulSoup(data, "lxml")
    title = None
    if soup.title is not None and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    metadata: dict[str, Any] = {}
    for meta in soup.find_all("meta"):
        key = (meta.get("name") or meta.get("property") or "").strip().lower()
        content = " ".join(str(meta.get("content") or "").split())
        if key in _META_KEYS and content and _META_KEYS[key] not in metadata:
            metadata[_META_KEYS[key]] = content
    body = soup.body or soup
    for tag in body.find_all(_DROP_TAGS):
        tag.decompose()
    for comment in body.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    h1 = body.find("h1")
    if title is None and h1 is not None and h1.get_text(strip=True):
        title = h1.get_text(" ", strip=True)
    # The source's white space is one space (a line break beside Chinese text is none);
    # block elements and <br> are where lines break.
    for string in list(body.find_all(string=True)):
        if isinstance(string, NavigableString) and string.find_parent("pre") is None:
            collapsed = _BREAK_RUN.sub(_SOURCE_BREAK, str(string))
            string.replace_with(re.sub(r"[^\S\x1f]+", " ", collapsed))
    for br in body.find_all("br"):
        br.replace_with(_BREAK)
    for tag in body.find_all(_BLOCK_TAGS):
        tag.insert_before(_BREAK)
        tag.append(_BREAK)
    lines = []
    for raw in body.get_text().split(_BREAK):
        for piece in raw.split("\n"):  # only <pre> keeps its own line breaks
            line = " ".join(_CJK_GAP.sub("", piece).replace(_SOURCE_BREAK, " ").split())
            if line:
                lines.append(line)
    return Extracted("\n".join(lines), "html", title=title, metadata=metadata)


_READERS: dict[str, Callable[[bytes], Extracted]] = {
    "text": _read_text,
    "markdown": _read_markdown,
    "docx": _read_docx,
    "pdf": _read_pdf,
    "html": _read_html,
}


def _describe(exc: Exception) -> str:
    message = " ".join(str(exc).split())[:200]
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
