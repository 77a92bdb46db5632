"""HTML, PDF and DOCX documents: visible text only, exact spans of the extracted text, PDF page numbers, and
one warning for a corrupt file."""
import docx
import pytest

from qa.assistant import Assistant
from qa.config import build_config
from qa.reading import read_corpus


def write_pdf(path, pages: list[str]) -> None:
    """A minimal PDF, one line of Helvetica text per page, written by hand (no PDF library writes text)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None,
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
                       "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


@pytest.fixture
def formats(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "page.html").write_text(
        "<html><head><title>Ignored head</title><style>p {color: red}</style></head><body>"
        "<script>alert('x'); var secret = 1;</script><h1>Harbour rules</h1>"
        "<p>Boats must leave the harbour by <b>nine o'clock</b> in the evening.</p>"
        "<p>Fishing &amp; swimming are forbidden near the pier.</p><noscript>Enable JS</noscript></body></html>",
        encoding="utf-8")
    write_pdf(data / "manual.pdf", ["The pump is started with the green button.",
                                    "The filter is cleaned every Tuesday morning."])
    d = docx.Document()
    d.add_paragraph("Meeting notes")
    d.add_paragraph("The budget for the garden project is four hundred euros.")
    d.save(data / "notes.docx")
    (data / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (data / "fake.docx").write_bytes(b"PK\x03\x04 not a zip at all")
    return data


def test_each_format_gives_its_visible_text_and_bad_files_one_warning(formats):
    warnings = []
    docs = {d.source: d.text for d in read_corpus(formats, warnings.append)}
    assert docs["page.html"] == ("Harbour rules\nBoats must leave the harbour by nine o'clock in the evening.\n"
                                 "Fishing & swimming are forbidden near the pier.")
    assert docs["manual.pdf"] == ("The pump is started with the green button.\n\f\n"
                                  "The filter is cleaned every Tuesday morning.")
    assert docs["notes.docx"] == "Meeting notes\nThe budget for the garden project is four hundred euros."
    assert sorted(w.split(":")[0] for w in warnings) == ["skipped broken.pdf", "skipped fake.docx"]


def test_answers_cite_exact_spans_and_pdf_pages(formats, tmp_path, embedder):
    a = Assistant(build_config({}, data_dir=formats, index_dir=tmp_path / "index"))
    a.embedder = embedder
    a.build(warn=lambda m: None)
    texts = {d.source: d.text for d in read_corpus(formats, lambda m: None)}
    for question, source, words, page in [
            ("When is the filter cleaned?", "manual.pdf", "every Tuesday morning", 2),
            ("How is the pump started?", "manual.pdf", "green button", 1),
            ("When must boats leave the harbour?", "page.html", "nine o'clock", 0),
            ("What is the budget for the garden project?", "notes.docx", "four hundred euros", 0)]:
        answer = a.ask(question)
        c = answer.citations[0]
        assert c.source == source and words in c.text, answer
        assert texts[source][c.start:c.end] == c.text and c.page == page
        assert ("page" in c.to_json()) == bool(page)
    indexed = " ".join(c.text for c in a.index.store.chunks.values())
    assert "alert" not in indexed and "secret" not in indexed and "Ignored head" not in indexed
