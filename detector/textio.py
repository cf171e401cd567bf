"""The one rule patrol reads hand-made text files by: UTF-8, else Shift_JIS (cp932).

Municipal PCs write text in three ways: UTF-8 (with a BOM from Excel's "CSV UTF-8" and Notepad, without from most
other programs), Shift_JIS as Windows writes it (cp932: Notepad's "ANSI", Excel's "CSV (comma delimited)", road
ledger systems, fleet exports) and UTF-16 with a BOM (Notepad's "Unicode", Excel's "Unicode text"). One rule for
all of them, used by every reader of such a file (a data.yaml and its list files, a GPS track CSV, a crew's
verification list, a Shapefile's .dbf without a code page):

1. a UTF-16 byte order mark: UTF-16 (nothing else starts with ``FF FE`` / ``FE FF``);
2. UTF-8, strictly (a UTF-8 BOM taken off): Shift_JIS text is almost never valid UTF-8, so this is a safe first try;
3. cp932, strictly, and only where the text holds no character Japanese text is made of none of: Python's cp932
   maps even bytes Shift_JIS has no character for (0x80, 0xA0, 0xFD-0xFF) to C1 controls and private-use code
   points: such text is not Shift_JIS (``lenient`` lets a few through). User-defined characters (gaiji, 外字:
   0xF040-0xF9FC, private use U+E000-U+E757) are real in Japanese files (a rare kanji of a place or person's
   name in a road ledger, a fleet export's driver column) but are also what a Latin-1 file decodes to ("ñ" + a
   letter): they are taken where the text holds at least as many characters of Shift_JIS's common rows (kana,
   full-width symbols and the first level of kanji, lead bytes 0x81-0x9F, which Latin-1 text never yields) as
   gaiji, else counted against it like the bytes above;
4. else :class:`TextEncodingError` ("neither UTF-8 nor Shift_JIS (cp932) text"), which each reader turns into its
   own error naming the file and what to do.

``decode_text(data, partial=False, lenient=False) -> (text, codec)``: ``codec`` is ``"utf-16"``, ``"utf-8"`` or
``"cp932"``. ``partial``: ``data`` is the head of a file and may end inside a character (that tail is left off).
``lenient``: a few bad sequences are allowed (replaced by U+FFFD): a dBASE writer cuts a name or value at its byte
limit inside a character; text in another encoding fails on most of its characters.
"""
from __future__ import annotations

import re

__all__ = ["TextEncodingError", "decode_text", "table_delimiter", "NEITHER", "CODEC_LABELS"]

NEITHER = "neither UTF-8 nor Shift_JIS (cp932) text"
CODEC_LABELS = {"utf-8": "UTF-8", "cp932": "Shift_JIS (cp932)", "utf-16": "UTF-16"}

# what cp932 decodes bytes to that no Shift_JIS text holds: C1 controls (0x80) and the private-use code points of
# 0xA0 and 0xFD-0xFF. ASCII's own control bytes are not counted: UTF-8 (step 2) takes them too
_NOT_SJIS = re.compile("[\x80-\x9f\uf8f0-\uf8f3]")
# the user-defined area 0xF040-0xF9FC (gaiji, 外字), where Latin-1 "ñ" + a letter lands too
_GAIJI = re.compile("[\ue000-\ue757]")


def _common_rows(text: str) -> int:
    """How many characters of ``text`` cp932 writes with a lead byte 0x81-0x9F (kana, full-width symbols, the first
    level of kanji): the body of Japanese text, never the decoding of Latin-1 text (0x80-0x9F are its controls)."""
    chars = [c for c in set(text) if not c.isascii()]
    common = []
    for c in chars:
        try:
            b = c.encode("cp932")
        except UnicodeEncodeError:
            continue
        if len(b) == 2 and 0x81 <= b[0] <= 0x9F:
            common.append(c)
    if not common:
        return 0
    return len(re.findall("[" + "".join(re.escape(c) for c in common) + "]", text))


def _not_sjis(text: str) -> int:
    """The characters of cp932-decoded ``text`` that say it is not Shift_JIS text: bytes Shift_JIS has no character
    for, and gaiji outnumbering the characters of Shift_JIS's common rows (Latin-1 text, see the module doc)."""
    bad = len(_NOT_SJIS.findall(text))
    gaiji = len(_GAIJI.findall(text))
    if gaiji and _common_rows(text) < gaiji:
        bad += gaiji
    return bad


class TextEncodingError(ValueError):
    """Text in neither UTF-8 nor Shift_JIS (cp932)."""

    def __init__(self, msg: str = NEITHER):
        super().__init__(msg)


def _bad_allowed(text: str) -> int:
    return 2 + sum(not c.isascii() for c in text) // 100


def decode_text(data: bytes, partial: bool = False, lenient: bool = False) -> tuple[str, str]:
    """(text, codec) of a hand-made text file's bytes by the module's rule; TextEncodingError else."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace" if partial or lenient else "strict"), "utf-16"
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    for codec in ("utf-8", "cp932"):
        if lenient:
            text = data.decode(codec, "replace")
            bad = text.count("\ufffd") + (_not_sjis(text) if codec == "cp932" else 0)
            if bad <= _bad_allowed(text):
                return text, codec
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError as e:
            if not (partial and e.start >= len(data) - 3):
                continue
            text = data[:e.start].decode(codec)
        if codec == "cp932" and _not_sjis(text):
            continue
        return text, codec
    raise TextEncodingError()


def table_delimiter(text: str) -> str:
    """The delimiter of a decoded table (a crew list, a detections.csv): a tab where the header line has tabs and no
    comma (Excel's "Unicode text" is tab-separated), else a comma."""
    first = text.split("\n", 1)[0]
    return "\t" if "\t" in first and "," not in first else ","
