"""Build .docx, .pdf and .html fixtures in the tests themselves (no binaries in the repository)."""

from __future__ import annotations

import html
import io
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

_CJK_FONT_GUESSES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


def make_docx(
    lines: Sequence[str], *, title: str | None = None, author: str | None = None
) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = title or ""
    document.core_properties.author = author or ""  # not the template's "python-docx"
    for line in lines:
        document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def cjk_font() -> Path | None:
    """A font file with Chinese glyphs on this machine, or None."""
    if shutil.which("fc-list"):
        listed = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False
        ).stdout
        files = sorted({line.split(":")[0].strip() for line in listed.splitlines()})
        for name in sorted(files, key=lambda f: "Regular" not in f):
            path = Path(name)
            if path.suffix.lower() in (".ttf", ".otf", ".ttc") and path.is_file():
                return path
    return next((Path(p) for p in _CJK_FONT_GUESSES if Path(p).is_file()), None)


def make_pdf(
    paragraphs: Sequence[str],
    *,
    font: Path | None = None,
    title: str | None = None,
    author: str | None = None,
    page_numbers: bool = True,
) -> bytes:
    """A PDF with a text layer: each paragraph wrapped at the page width, page numbers in the
    footer. Without ``font``, the built-in Helvetica (Latin text only)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    if font is not None:
        extra = {"collection_font_number": 0} if font.suffix.lower() == ".ttc" else {}
        pdf.add_font("body", fname=str(font), **extra)
        family = "body"
    else:
        family = "Helvetica"
    pdf.add_page()
    pdf.set_font(family, size=12)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
    if page_numbers:
        for page in range(1, pdf.pages_count + 1):
            pdf.page = page
            pdf.set_y(-15)
            pdf.cell(0, 10, f"- {page} -", align="C")
    return bytes(pdf.output())


def make_html(paragraphs: Sequence[str], *, title: str, meta: dict[str, str] | None = None) -> str:
    head = [f"<title>{html.escape(title)}</title>"]
    for name, content in (meta or {}).items():
        head.append(f'<meta name="{html.escape(name)}" content="{html.escape(content)}">')
    body = "\n".join(f"  <p>{html.escape(p)}</p>" for p in paragraphs)
    return (
        "<!DOCTYPE html>\n<html><head>"
        + "".join(head)
        + "</head>\n<body>\n<nav><a href='/'>首页</a> | <a href='/news'>新闻</a></nav>\n"
        + f"<h1>{html.escape(title)}</h1>\n{body}\n"
        + "<script>var tracker = '一、不是正文';</script>\n</body></html>\n"
    )
