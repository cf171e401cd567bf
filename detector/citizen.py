"""Citizen reports (住民通報) beside the patrol's own finds: ``patrol import-reports`` and ``--format reports``.

Japanese cities receive road-damage reports from residents (My City Report / マイシティレポート, ちばレポ, a city's own
web form) and export them as CSV: a report id, when it was posted, latitude and longitude, a category, the resident's
text, a photo's address and the city's handling status. ``read_reports`` reads such a file (UTF-8 with or without a
BOM, or Shift_JIS/cp932 as a Japanese city's export is: ``textio``'s one rule), finds its columns by their common
names (``COLUMN_NAMES``; ``--column KEY=NAME`` for others) and gives the good rows and, per bad row, its line and why.

A report is of the nearest registry damage within ``reports.radius_m`` (``match_reports``): computed when asked, never
stored, so it follows the damages as they are merged, moved or repaired. A report that says what it is about (穴, ひび
割れ, 亀甲: ``REPORT_KINDS``) is of the nearest damage of that kind within the radius, of another kind only where none
of its kind is that close; a word negated (穴はない, no pothole) or said of a roadside thing (カーブミラーが割れ) does
not count (``REPORT_WORD_RULES``), and the export and the map say which words did not and why (``report_words``). A damage may have several reports; a report with no damage that close is 未確認,
not yet seen by a patrol (to check on the next drive).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, time
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, UsageError, read_input_bytes

#: the report's fields and the column names a city's export gives them (compared without case, spaces, ``_``/``-``
#: and full-width forms: ``投稿 ID``, ``Report_ID`` and ``reportid`` alike); the first found wins
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("投稿ID", "通報ID", "通報番号", "受付番号", "ID", "report_id", "reportid"),
    "time": ("投稿日時", "通報日時", "受付日時", "日時", "投稿日", "受付日", "date", "datetime", "created_at",
             "posted_at", "time"),
    "lat": ("緯度", "lat", "latitude", "y"),
    "lon": ("経度", "lon", "lng", "long", "longitude", "x"),
    "category": ("カテゴリ", "カテゴリー", "分類", "種別", "category", "type"),
    "text": ("内容", "本文", "詳細", "投稿内容", "通報内容", "コメント", "description", "text", "body", "comment"),
    "url": ("画像", "写真", "画像URL", "写真URL", "image", "image_url", "photo", "url"),
    "status": ("対応状況", "状況", "ステータス", "状態", "status"),
}
#: the keys ``--column`` takes (``time=受付日時``)
COLUMN_KEYS = tuple(COLUMN_NAMES)
#: the fields a report needs: an id (re-imports update it, never duplicate it) and a position (what it is matched by)
REQUIRED = ("id", "lat", "lon")
#: Japan's extent, widened: a position outside it is kept (a resident's phone can be wrong) but said
JAPAN_LAT, JAPAN_LON = (20.0, 46.0), (122.0, 154.0)
#: the repair lists' columns (report.COLUMNS): how many reports a damage has and when the first was posted
LIST_COLUMNS = [("reports", "住民通報", "citizen reports"), ("reported_first", "初回通報", "first reported")]
#: what ``--format reports`` says of a report no damage is near
UNSEEN = "未確認"
#: ``--format reports``' columns: (column, Japanese, English)
EXPORT_COLUMNS: list[tuple[str, str, str]] = [
    ("source", "通報元", "source"),
    ("report_id", "投稿ID", "report id"),
    ("posted_at", "投稿日時", "posted at"),
    ("category", "カテゴリ", "category"),
    ("body", "内容", "text"),
    ("city_status", "対応状況", "city's status"),
    ("lat", "緯度", "latitude"),
    ("lon", "経度", "longitude"),
    ("image_url", "画像", "image"),
    ("patrol", "巡回", "patrol"),
    ("candidate_id", "候補ID", "candidate id"),
    ("distance_m", "距離(m)", "distance (m)"),
    ("kind", "通報の種類", "report's kind"),
    ("not_counted", "数えなかった語", "words not counted"),
    ("match", "種類の一致", "kind matched"),
    ("class", "分類", "class"),
    ("class_name_ja", "損傷種別", "damage type (ja)"),
    ("status", "状態", "status"),
    ("status_ja", "状態(和)", "status (ja)"),
    ("reports", "同じ損傷の通報数", "reports of the damage"),
    ("file", "取込ファイル", "imported from"),
    ("map", "地図", "map"),
]
REPORT_FILES = (".csv", ".xlsx")


@dataclass(frozen=True)
class ReportKind:
    """What a report says it is about: its label (``kind``), the words that say so (NFKC, lower case: compared so, as
    parts of the report's category and text), the damage classes it is of (``同種``) and those next to it (``類似``:
    an alligator crack's report at another crack)."""
    ja: str
    en: str
    words: tuple[str, ...]
    classes: tuple[str, ...]
    near: tuple[str, ...] = ()


#: the one word table: a report's kind by the words of its category and text (``report_kinds``); a report naming both
#: a pothole and a crack, or neither (段差, 破損, その他), is of no known kind (``UNKNOWN_KIND``: matched as the nearest)
REPORT_KINDS: dict[str, ReportKind] = {
    "pothole": ReportKind("ポットホール", "pothole",
                          ("穴", "ポットホール", "陥没", "くぼみ", "窪み", "凹み", "へこみ", "ヘコミ", "pothole", "pot hole",
                           "pot-hole", "sinkhole", "hole"),
                          ("D40",)),
    "alligator": ReportKind("亀甲状ひび割れ", "alligator crack", ("亀甲", "きっこう", "alligator", "crocodile"),
                            ("D20",), ("D00", "D10")),
    "crack": ReportKind("ひび割れ", "crack", ("ひび", "ヒビ", "ひびわれ", "ヒビワレ", "亀裂", "クラック", "割れ", "割れ目", "crack"),
                        ("D00", "D10", "D20")),
}


@dataclass(frozen=True)
class WordRule:
    """Where a kind word of ``REPORT_KINDS`` does not count (``report_kinds``): the rule in Japanese and English (the
    export's explanation sheet and README say them), examples, why, its pattern (NFKC, lower case text) whose every
    match is taken out of the report's words before they are read, and its short name in Japanese and English (the
    reason a report's 数えなかった語 gives: ``穴 (否定)``)."""
    ja: str
    en: str
    examples: str
    why: str
    pattern: str
    label: tuple[str, str]


def _any(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


#: kind words that are a word of their own, not the end of another: hole (not manhole, whole, keyhole)
_OWN_WORDS = ("hole",)


def _words(words) -> str:
    """``_any`` of kind words, one of ``_OWN_WORDS`` only where no letter comes right before it (its lookbehind after
    its first letter: the pattern still starts with a letter, which the regex engine scans for fast)."""
    return "|".join(rf"{w[0]}(?<![a-z]{w[0]}){re.escape(w[1:])}" if w in _OWN_WORDS else re.escape(w)
                    for w in sorted(words, key=len, reverse=True))


_KIND_WORDS = _words({w for k in REPORT_KINDS.values() for w in k.words})
#: a run of kind words as a resident writes them (ひび割れ, 亀甲状のひび割れ, 穴やひび, 穴ぼこ, 穴でもひびでも)
_RUN_JA = (rf"(?:{_KIND_WORDS})(?:(?:[状のや・と/も]{{0,2}}|でも|とか)(?:{_KIND_WORDS}))*"
           r"(?:ぼこぼこ|ボコボコ|ぼこ|ボコ|らしきもの|らしき|のようなもの|のような|など|等)?")
#: the roadside things whose own damage a resident reports with the same words (a broken mirror, a hole in a sign)
_FIXTURES = ("ガードレール", "ガードパイプ", "防護柵", "ガードケーブル", "フェンス", "カーブミラー", "ミラー", "鏡", "標識",
             "看板", "案内板", "街灯", "街路灯", "道路照明", "照明", "信号機", "信号", "電柱", "ガラス", "蓋", "ふた", "フタ",
             "グレーチング", "側溝", "縁石", "車止め", "ポール", "ボラード", "ベンチ", "バス停")
_FIXTURES_EN = ("guard rail", "guardrail", "guard-rail", "railing", "fence", "mirror", "sign", "signpost",
                "street light", "streetlight", "lamp", "glass", "cover", "lid", "grate", "grating", "drain", "curb",
                "kerb", "bollard", "pole", "bench")
#: 穴 (hole) in words not about a hole in the road
_IDIOMS = ("穴場", "節穴", "鍵穴", "カギ穴", "かぎ穴", "墓穴", "風穴", "抜け穴", "抜穴", "ボルト穴", "ねじ穴", "ネジ穴",
           "bolt hole", "screw hole", "watering hole", "rabbit hole", "hole in one", "hole-in-one")
_RUN_EN = r"(?:pot[ -]?holes?|sink[ -]?holes?|holes?|alligator|crocodile|crack)[a-z]*(?:\s+crack[a-z]*)?"
_FILLER_EN = (r"(?:a|an|any|the|real|actual|actually|really|visible|obvious|big|large|major|serious|deep|new|more|"
              r"longer|such|signs?|of|noticeable|sizable)")

#: the one rule table beside ``REPORT_KINDS``: a kind word matched by one of these is not counted (the report's other
#: words are); a report none of whose words count is of no known kind (``UNKNOWN_KIND``)
REPORT_WORD_RULES: tuple[WordRule, ...] = (
    WordRule("否定: 言葉の後の ない・なし・ありません・ではなく (句点をまたがない; 言葉や「は」の後の読点・空白は可)",
             "negated after the word in Japanese (not across 。！？; a 、 or a space after the word or its は read "
             "through)",
             "穴はない, 穴は、ない, 穴は ありません, ひび割れ: なし, 陥没ではない, 穴でなく段差です, 穴でもひびでもない, "
             "ひびは入っていない, 陥没していない, 穴は見当たらない",
             "the resident says it is not there; 穴はまだ直っていない, 穴があいていて危ない, 穴ではないか still count "
             "(only は/が/も/では/で/じゃ/でも …, あいて/入って/見当たら …, then ない/なし/なく/ありません right after the "
             "word)",
             rf"{_RUN_JA}\s?(?:では|じゃ|でも|には|とは|なども|は|が|も|の|で)?[\s、,:.]{{0,3}}"
             r"(?:特に|とくに|全く|まったく|全然|ぜんぜん|一切|もう|既に|すでに|どこにも)?"
             r"(?:[あ開空]いて[いおは]?|[あ開空]き|できて?い?|入ってい?|入り|見当たら|見あたら|みあたら|見当たり|"
             r"見あたり|みあたり|見られ|みられ|確認でき|確認され|認められ|発生してい?|生じてい?|あり|ござい|し?て[いおは]?)?"
             r"(?:ない|無い|なし|無し|なく|無く|なかった|無かった|ません|らず|ず)(?!か|でしょうか|ですか|だろう|じゃ|な|しは)",
             ("否定", "negated")),
    WordRule("否定: 英語の前の no・not・without・neither", "negated before the word in English",
             "no pothole, not a pothole, without cracks, there isn't any pothole, there are no holes, no potholes or "
             "cracks, neither a pothole nor a crack",
             "the resident says it is not there; pothole not repaired, not only potholes but also cracks still count "
             "(only a, any, the, visible … between)",
             rf"(?:\b(?:no|not|without|nor|never|neither)|n['’]t)\s+(?:{_FILLER_EN}\s+){{0,3}}{_RUN_EN}"
             rf"(?:\s*(?:/|\bor\b|\band\b|\bnor\b)\s*(?:{_FILLER_EN}\s+){{0,2}}{_RUN_EN})*",
             ("否定", "negated")),
    WordRule("付属物の損傷: ガードレール・カーブミラー・標識・側溝や蓋・縁石などが割れ/ひび/穴",
             "the damage of a roadside thing (guardrail, mirror, sign, gutter or its cover, curb …)",
             "カーブミラーが割れている, 標識にひび, ガードレールに穴, 側溝の蓋が割れ, 割れたガラス, cracked mirror, "
             "the sign is cracked, a hole in the fence",
             "not the pavement's crack or pothole; ガードレール沿いの路面のひび, マンホールの周りの穴 still count (only the "
             "thing with が/は/の/に/も right before the word, or 割れた right before the thing)",
             rf"(?:{_any(_FIXTURES)})(?:の(?:板|面|表面|部分|一部|支柱|柱|鏡|ガラス|カバー|蓋|ふた|フタ))?"
             r"(?:が|は|も|に|の)?(?:一部|少し|大きく|完全に|粉々に)?"
             rf"{_RUN_JA}|(?:{_RUN_JA})(?:た|ていた|てい?る)(?:{_any(_FIXTURES)})|"
             rf"\b(?:{_any(_FIXTURES_EN)})s?\s+(?:(?:is|was|are|were|has|have|got|been|a|badly|completely)\s+)*"
             rf"{_RUN_EN}|\b(?:crack(?:ed|s)?|holes?)\s+(?:(?:in|on)\s+)?"
             rf"(?:(?:the|a|an|curve|traffic|road|street)\s+)*(?:{_any(_FIXTURES_EN)})s?\b",
             ("付属物", "roadside thing")),
    WordRule("穴の慣用語: 穴場・節穴・鍵穴・墓穴・風穴・抜け穴・ボルト穴・ねじ穴, watering hole, bolt hole …",
             "穴 or hole in words not about a hole in the road",
             "穴場の店, 役所の目は節穴か, 墓穴を掘る, 標識のボルト穴, a nice watering hole",
             "a good spot, an idiom, a keyhole, a bolt hole; マンホールの穴, 落とし穴のような穴, a hole by the manhole "
             "still count (a hole by a manhole is the road's; manhole and whole are not the word hole)",
             _any(_IDIOMS), ("慣用語", "idiom")),
    WordRule("響く: ひびき・ひびく (響)", "ひび of 響く (to resound), written in kana",
             "振動がひびく, 音がひびいて",
             "a noise or a shake, not a crack",
             r"ひび(?=[きくかけこい])", ("響く", "resound")),
)
#: every rule of ``REPORT_WORD_RULES`` in one pattern: its matches are taken out of a report's words; led by the
#: characters a rule's match can begin with (a kind word, a roadside thing, no/not/without, an idiom), so that the
#: other places of a text are passed over at once (5 times faster)
_NOT_COUNTED = re.compile("(?=[" + re.escape("".join(sorted({w[0] for w in (
    *(w for k in REPORT_KINDS.values() for w in k.words), *_FIXTURES, *_FIXTURES_EN, *_IDIOMS, "no", "without")}
    | {"n"}))) + "])(?:" + "|".join(f"(?P<r{i}>{r.pattern})" for i, r in enumerate(REPORT_WORD_RULES)) + ")")

#: a match's kind words as ``report_words`` names them: a run of them (ひび割れ), an English one with its ending
#: (cracked, potholes)
_SHOWN = re.compile(rf"(?:(?:{_KIND_WORDS})[a-z]*)+")
#: the kind words of a text (what is left of it once the words not counted are out), each word's kind, and the kind of
#: a report by the kinds its words name: 亀甲 (with or without ひび) an alligator crack, else a crack, or a pothole;
#: both a pothole and a crack, or none, None
_KIND_FIND = re.compile(_KIND_WORDS)
_KIND_OF = {w: k for k, kind in REPORT_KINDS.items() for w in kind.words}
_KIND_OF_FOUND = {frozenset(s): ("pothole" if s == {"pothole"} else None if "pothole" in s or not s else
                                 "alligator" if "alligator" in s else "crack")
                  for s in ({k for k, on in zip(REPORT_KINDS, bits) if on}
                            for bits in np.ndindex(*(2,) * len(REPORT_KINDS)))}


@lru_cache(maxsize=4096)
def _shown(match: str) -> list[str]:
    """The kind words of a match not counted (``_SHOWN``: a city's reports repeat their phrases: found once)."""
    return _SHOWN.findall(match)

#: the label of a report of no known kind
UNKNOWN_KIND = ("不明", "unknown")
#: the report's fields its kind is read from (those ``read_reports`` keeps and the registry holds)
KIND_FIELDS = ("category", "body")
#: ``match``: the damage is of the report's kind, next to it, of another kind (none of its kind within the radius), or
#: ``NO_KIND`` (a report of no known kind, or none matched)
MATCH_LABELS = ("同種", "類似", "別種")
NO_KIND = "—"
#: ``MATCH_LABELS`` in English (report.html's popup of a report: Japanese / English)
MATCH_EN = {"同種": "same kind", "類似": "similar kind", "別種": "another kind"}


def _key(name: str) -> str:
    """A heading as compared: NFKC (full-width letters as ASCII), lower case, without spaces, ``_`` and ``-``."""
    return "".join(c for c in unicodedata.normalize("NFKC", str(name)).casefold() if not (c.isspace() or c in "_-"))


@dataclass
class ReportRead:
    """``read_reports``'s result: the good rows (``report_id``, ``store.REPORT_FIELDS``, ``posted_t``, ``row``: the
    file's line), the bad ones (line, why), notes (a row kept but worth saying: outside Japan, a repeated id) and the
    columns used (field -> heading)."""
    path: Path
    rows: pd.DataFrame
    rejected: list[tuple[int, str]] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    codec: str = "utf-8"
    n_read: int = 0


def parse_columns(values: list[str] | None) -> dict[str, str]:
    """``--column KEY=NAME`` (repeatable) as {key: heading}; exit 2 naming the option for an unknown key."""
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, name = str(v).partition("=")
        key = key.strip().lower()
        if not sep or not name.strip():
            raise UsageError(f"{v!r}: write KEY=NAME, e.g. time=受付日時", field="--column")
        if key not in COLUMN_NAMES:
            raise UsageError(f"{v!r}: unknown key {key!r}; one of {', '.join(COLUMN_KEYS)}", field="--column")
        out[key] = name.strip()
    return out


def _table(path: Path) -> tuple[list[list[str]], str]:
    """The file's cells as text, and its encoding (UTF-8, UTF-16, cp932; an .xlsx: its first sheet)."""
    from .store import _cell_text, open_workbook, read_csv_rows

    data = read_input_bytes(path)
    if data.startswith(b"PK\x03\x04"):
        wb = open_workbook(path, data)
        try:
            return [[_cell_text(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)], "xlsx"
        finally:
            wb.close()
    return read_csv_rows(data, path, "save the reports as CSV UTF-8")


def _find_columns(head: list[str], path: Path, overrides: dict[str, str]) -> dict[str, int]:
    keys = {}
    for j, h in enumerate(head):
        keys.setdefault(_key(h), j)
    found: dict[str, int] = {}
    for k, names in COLUMN_NAMES.items():
        if k in overrides:
            j = keys.get(_key(overrides[k]))
            if j is None:
                raise InputError(f"no column {overrides[k]!r} (--column {k}={overrides[k]}); its columns: "
                                 f"{', '.join(h for h in head if h)}", path)
            found[k] = j
            continue
        for n in names:
            if (j := keys.get(_key(n))) is not None and j not in found.values():
                found[k] = j
                break
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        raise InputError(f"no {' / '.join(missing)} column (looked for {'; '.join(', '.join(COLUMN_NAMES[k][:5]) for k in missing)}): "
                         f"name it with --column {missing[0]}=HEADING; its columns: {', '.join(h for h in head if h)}",
                         path)
    return found


def _when(text: str, tz) -> datetime:
    """A report's time as a city's export writes it (``2026/11/20 9:30``, ``2026-11-20T09:30:00+09:00``,
    ``2026年11月20日 9時30分``, an Excel serial: ``store._parse_when``); a date alone: its midnight; no offset: ``tz``."""
    from .store import _parse_when

    w = _parse_when(text)
    if not isinstance(w, datetime):
        w = datetime.combine(w, time(0))
    return w if w.tzinfo else w.replace(tzinfo=tz)


def read_reports(path: str | Path, tz, overrides: dict[str, str] | None = None) -> ReportRead:
    """The citizen reports of ``path`` (CSV, or an .xlsx's first sheet): its good rows and, per bad row, why: no
    report id, no position (a latitude or longitude missing, not a number, or out of range), a time that cannot be
    read. A report id given again further down: the later row is kept (an export lists a report once; a hand-joined
    file's later row is the newer), the earlier said. A position outside Japan is kept and said. Raises InputError
    only for the file as a whole (unreadable, no header, no id / latitude / longitude column)."""
    path = Path(path)
    table, codec = _table(path)
    while table and not any(c.strip() for c in table[0]):
        table.pop(0)
    if not table:
        raise InputError("empty: no header row", path)
    head = [c.strip() for c in table[0]]
    cols = _find_columns(head, path, overrides or {})
    body = [(i, r) for i, r in enumerate(table[1:], 2) if any(c.strip() for c in r)]
    n = len(body)
    cell = {k: pd.Series([r[j].strip() if j < len(r) else "" for _, r in body], dtype=object) for k, j in cols.items()}
    for k in COLUMN_NAMES:
        cell.setdefault(k, pd.Series([""] * n, dtype=object))
    line = np.array([i for i, _ in body], dtype=int)

    def num(s: pd.Series) -> np.ndarray:  # NFKC: full-width digits, as a Japanese sheet may hold
        return pd.to_numeric(s.map(lambda v: unicodedata.normalize("NFKC", v)), errors="coerce").to_numpy(float)

    lat, lon = num(cell["lat"]), num(cell["lon"])
    why = np.full(n, None, dtype=object)
    has_id = (cell["id"] != "").to_numpy()
    why[~has_id] = "no report id"
    no_pos = ~(np.isfinite(lat) & np.isfinite(lon))
    why[has_id & no_pos] = "no position (latitude/longitude empty or not a number)"
    bad_range = ~no_pos & ((np.abs(lat) > 90) | (np.abs(lon) > 180))
    why[has_id & bad_range] = "latitude/longitude out of range (the two columns swapped?)"
    posted = np.full(n, None, dtype=object)
    posted_t = np.full(n, np.nan)
    for i, text in enumerate(cell["time"]):  # (a few thousand reports at most: text a row, as a crew's list)
        if not text or why[i] is not None:
            continue
        try:
            w = _when(text, tz)
        except ValueError:
            why[i] = f"time {text[:40]!r} cannot be read"
            continue
        posted[i], posted_t[i] = w.isoformat(timespec="seconds"), w.timestamp()
    rejected = [(int(line[i]), str(why[i])) for i in np.flatnonzero(why != None)]  # noqa: E711 - object array
    ok = why == None  # noqa: E711
    ids = cell["id"].map(lambda v: unicodedata.normalize("NFKC", v))
    notes: list[tuple[int, str]] = []
    outside = ok & ~((lat >= JAPAN_LAT[0]) & (lat <= JAPAN_LAT[1]) & (lon >= JAPAN_LON[0]) & (lon <= JAPAN_LON[1]))
    notes += [(int(line[i]), f"{ids[i]}: position {lat[i]:.5f}, {lon[i]:.5f} is outside Japan (kept)")
              for i in np.flatnonzero(outside)]
    rows = pd.DataFrame({"report_id": ids, "posted_at": posted, "lat": lat, "lon": lon,
                         "category": cell["category"], "body": cell["text"], "image_url": cell["url"],
                         "city_status": cell["status"], "posted_t": posted_t, "row": line})[ok].reset_index(drop=True)
    for c in ("category", "body", "image_url", "city_status"):
        rows[c] = [v or None for v in rows[c]]
    again = rows["report_id"].duplicated(keep="last").to_numpy()
    if again.any():
        last = dict(zip(rows["report_id"], rows["row"]))
        notes += [(int(r), f"{rid}: given again on line {last[rid]}, that row kept")
                  for rid, r in zip(rows["report_id"][again], rows["row"][again])]
        rows = rows[~again].reset_index(drop=True)
    notes.sort()
    used = {k: head[j] for k, j in cols.items()}
    return ReportRead(path, rows, rejected, notes, used, codec, n)


def only_categories(got: ReportRead, texts: list[str]) -> pd.Series:
    """Keep in ``got.rows`` only the reports whose category holds one of ``texts`` (compared NFKC, without case:
    ``--category 道路`` keeps 道路 and 道路・舗装; a My City Report export lists every department's reports: parks,
    litter, street lights); a report without a category is left out too. Returns the left-out reports' categories
    counted (most first; ``(none)`` for those without one)."""
    keys = [unicodedata.normalize("NFKC", t).strip().casefold() for t in texts if t and t.strip()]
    if not keys:
        raise UsageError("give the text a category holds, e.g. --category 道路", None, "--category")
    cat = got.rows["category"].map(lambda v: unicodedata.normalize("NFKC", v).casefold() if isinstance(v, str) else "")
    keep = cat.map(lambda v: any(k in v for k in keys)).to_numpy(bool)
    left = got.rows.loc[~keep, "category"].fillna("(none)").value_counts()
    got.rows = got.rows[keep].reset_index(drop=True)
    return left


def metric_crs(lat: np.ndarray, lon: np.ndarray):
    """The UTM zone (WGS 84) of the positions' middle: metres to compare them in (as ``locate.crs: null`` takes the
    network's UTM zone)."""
    from pyproj import CRS

    lon0 = float(np.nanmedian(lon)) if np.isfinite(lon).any() else 135.0
    lat0 = float(np.nanmedian(lat)) if np.isfinite(lat).any() else 35.0
    zone = int((lon0 + 180) // 6) % 60 + 1
    return CRS.from_epsg((32600 if lat0 >= 0 else 32700) + zone)


def report_kinds(reports: pd.DataFrame) -> np.ndarray:
    """Each report's kind (a key of ``REPORT_KINDS``, or None: none known): ``report_words``' kinds."""
    return report_words(reports)[0]


def report_words(reports: pd.DataFrame) -> tuple[np.ndarray, list[tuple[tuple[str, int], ...]]]:
    """Each report's kind (a key of ``REPORT_KINDS``, or None: none known) by the words of its ``KIND_FIELDS``
    (NFKC, lower case): 亀甲 an alligator crack, else ひび/亀裂/クラック a crack, 穴/陥没/くぼみ a pothole; a report
    naming both a pothole and a crack, or neither, None. A word a rule of ``REPORT_WORD_RULES`` matches does not
    count (穴はない, not a pothole, カーブミラーが割れ, 穴場): one pattern, taken out of each distinct text first.
    And each report's words not counted, in the order written, each once: (word, the index of its rule) pairs
    (``not_counted_text``), () where none."""
    n = len(reports)
    fields = [reports[f].to_numpy(object) for f in KIND_FIELDS if f in reports.columns]
    text = [" ".join(v for v in vs if isinstance(v, str)) for vs in zip(*fields)] if fields else [""] * n
    codes, uniq = pd.factorize(pd.Series(text, dtype=object))  # (a city's reports repeat their words: read once)
    gone: list[tuple] = []

    def out_(m: re.Match) -> str:  # a match not counted: its kind words (runs: ひび割れ, cracked) and why
        i = int(m.lastgroup[1:])
        for w in _shown(m.group()):
            if (w, i) not in gone:
                gone.append((w, i))
        return "〓"

    kinds, why = [], []
    for v in uniq:
        gone = []
        counted = _NOT_COUNTED.sub(out_, unicodedata.normalize("NFKC", v).casefold())
        kinds.append(_KIND_OF_FOUND[frozenset(map(_KIND_OF.__getitem__, _KIND_FIND.findall(counted)))])
        why.append(tuple(gone))
    return np.array(kinds, dtype=object)[codes], [why[c] for c in codes]


def not_counted_text(pairs, lang: str = "ja") -> str | None:
    """A report's words not counted (``report_words``' pairs) as the export and the map say them: ``穴 (否定), 割れ
    (付属物)`` (``lang`` ja), ``穴 (negated)`` (en), ``穴 (否定 / negated)`` (both); None where none."""
    if not pairs:
        return None
    at = {"ja": 0, "en": 1}

    def why(i: int) -> str:
        label = REPORT_WORD_RULES[i].label
        return label[at[lang]] if lang in at else " / ".join(label)

    return ", ".join(f"{w} ({why(i)})" for w, i in pairs)


def kind_label(kind, lang: str = "ja") -> str:
    """A report's kind (``report_kinds``) as the export says it: ポットホール, ひび割れ, 亀甲状ひび割れ, 不明."""
    k = REPORT_KINDS.get(kind) if isinstance(kind, str) else None
    return (k.ja if lang == "ja" else k.en) if k else UNKNOWN_KIND[0 if lang == "ja" else 1]


def _rank_table(classes: np.ndarray) -> np.ndarray:
    """rank[kind, class] (kinds: None then ``REPORT_KINDS``' order; classes: ``classes``): 0 of the kind (any class
    for a report of no known kind), 1 next to it, 2 another."""
    table = np.zeros((1 + len(REPORT_KINDS), len(classes)), dtype=np.int8)
    for i, kind in enumerate(REPORT_KINDS.values(), 1):
        table[i] = np.where(np.isin(classes, kind.classes), 0, np.where(np.isin(classes, kind.near), 1, 2))
    return table


def match_reports(reports: pd.DataFrame, targets: pd.DataFrame, radius_m: float) -> pd.DataFrame:
    """Each report's damage among ``targets`` (``Store.report_targets``: candidate_id, class, lat, lon, …) within
    ``radius_m`` on the ground, in a metric CRS (``metric_crs``): the nearest of the report's kind (``report_kinds``),
    else the nearest next to it (an alligator crack's report: another crack), else the nearest of any kind; a report
    of no known kind: the nearest. One STRtree query of every report-damage pair within the radius, the pick per
    report by numpy. ``reports`` with ``candidate_id`` (None: none that close), ``distance_m`` (m, 0.1), ``kind``
    (``kind_label``), ``not_counted`` (``report_words``' pairs: the words of its text not counted and why, () where
    none; ``not_counted_text``) and ``match`` (``MATCH_LABELS``, ``NO_KIND``) added."""
    from shapely import STRtree, points

    from .gis import project

    out = reports.copy()
    kinds, why = report_words(out)
    out["candidate_id"] = pd.Series([None] * len(out), index=out.index, dtype=object)
    out["distance_m"] = np.nan
    out["kind"] = [kind_label(k) for k in kinds]
    out["not_counted"] = pd.Series(why, index=out.index, dtype=object)
    out["match"] = NO_KIND
    if not len(out) or not len(targets):
        return out
    crs = metric_crs(targets["lat"].to_numpy(float), targets["lon"].to_numpy(float))
    tx, ty = project(targets["lat"], targets["lon"], crs)
    rx, ry = project(out["lat"], out["lon"], crs)
    tree = STRtree(points(tx, ty))
    has = np.flatnonzero(np.isfinite(rx) & np.isfinite(ry))
    ri, ti = tree.query(points(rx[has], ry[has]), predicate="dwithin", distance=radius_m)
    ri = has[ri]
    dist = np.hypot(rx[ri] - tx[ti], ry[ri] - ty[ti])
    cls = targets["class"].to_numpy(object) if "class" in targets.columns else np.full(len(targets), None, object)
    names, code = np.unique(np.where(pd.isna(cls), "", cls).astype(str), return_inverse=True)
    kcode = np.zeros(len(out), dtype=np.int8)
    for i, k in enumerate(REPORT_KINDS, 1):
        kcode[kinds == k] = i
    rank = _rank_table(names)[kcode[ri], code[ti]]
    order = np.lexsort((ti, dist, rank, ri))  # per report: its kind first, then the nearest (then the older damage)
    first = order[np.unique(ri[order], return_index=True)[1]]
    at, ti, dist, rank = ri[first], ti[first], dist[first], rank[first]
    cid = np.full(len(out), None, dtype=object)
    d = np.full(len(out), np.nan)
    m = np.full(len(out), NO_KIND, dtype=object)
    cid[at] = targets["candidate_id"].to_numpy(object)[ti]
    d[at] = np.round(dist, 1)
    known = kcode[at] > 0
    m[at[known]] = np.array(MATCH_LABELS, dtype=object)[rank[known]]
    out["candidate_id"], out["distance_m"], out["match"] = cid, d, m
    return out


def damage_columns(matched: pd.DataFrame, ids: pd.Series) -> tuple[list, list]:
    """For each damage id of ``ids``: the number of reports ``matched`` gives it (0 for none) and the first one's
    time (``posted_at``, ISO; None where none of its reports has a time)."""
    m = matched[matched["candidate_id"].notna()]
    n = m.groupby("candidate_id").size()
    timed = m[m["posted_t"].notna()]
    first = timed.loc[timed.groupby("candidate_id")["posted_t"].idxmin()].set_index("candidate_id")["posted_at"] \
        if len(timed) else pd.Series(dtype=object)
    ids = pd.Series(ids, dtype=object)
    return ([int(v) for v in ids.map(n).fillna(0)], [v if isinstance(v, str) else None for v in ids.map(first)])


def registry_matches(st, cfg, radius_m: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every report held by the registry ``st`` with its damage: ``match_reports``, the damages they were matched
    among: ``Store.report_targets``)."""
    radius = radius_m if radius_m is not None else cfg.reports.radius_m
    targets = st.report_targets()
    return match_reports(st.reports(), targets, radius), targets


def _near(lat, lon, ref_lat, ref_lon, radius_m: float, crs) -> np.ndarray:
    """True where (``lat``, ``lon``) lies within ``radius_m`` of one of (``ref_lat``, ``ref_lon``), measured in the
    metric ``crs`` (``metric_crs``): one STRtree ``dwithin`` query; a point without a position: False."""
    from shapely import STRtree, points

    from .gis import project

    rx, ry = project(np.asarray(lat, float), np.asarray(lon, float), crs)
    tx, ty = project(np.asarray(ref_lat, float), np.asarray(ref_lon, float), crs)
    has = np.flatnonzero(np.isfinite(rx) & np.isfinite(ry))
    out = np.zeros(len(rx), dtype=bool)
    ri, _ = STRtree(points(tx, ty)).query(points(rx[has], ry[has]), predicate="dwithin", distance=radius_m)
    out[has[ri]] = True
    return out


def damage_matches(st, cfg, ids) -> pd.DataFrame:
    """The reports held by the registry ``st`` that are of one of the damages ``ids`` or may be (a run's registry
    ids after its merge: its lists' ``reports`` / ``reported_first``, ``damage_columns``), each with its damage as
    ``registry_matches`` gives it: only those within ``reports.radius_m`` of one of those damages (one STRtree query
    in ``match_reports``' CRS, the same ``dwithin``) are matched, against all the registry's damages; a report
    farther from each is of none of them. So a run without report.html reads the kinds of its roads' reports, not the
    whole city's."""
    radius = cfg.reports.radius_m
    targets, reports = st.report_targets(), st.reports()
    mine = np.array(targets["candidate_id"].isin(set(pd.Series(list(ids), dtype=object).dropna())), dtype=bool)
    if not len(reports) or not mine.any():
        return match_reports(reports.iloc[:0], targets, radius)
    crs = metric_crs(targets["lat"].to_numpy(float), targets["lon"].to_numpy(float))  # (match_reports' own)
    near = _near(reports["lat"], reports["lon"], targets["lat"][mine], targets["lon"][mine], radius, crs)
    return match_reports(reports[near].reset_index(drop=True), targets, radius)


def run_reports(matched: pd.DataFrame, ids, lat, lon, radius_m: float) -> pd.DataFrame:
    """The reports of one run's map (``patrol run --store``'s report.html): of ``matched`` (``registry_matches``,
    after the run's merge), those of a damage the run saw (its registry ids ``ids``) and those 未確認 (no damage
    within ``radius_m``) within ``radius_m`` of a position of the run's track (``lat``, ``lon``: the frames it used),
    the reports on the roads it drove; a report of a damage the run did not see, and a 未確認 one off its roads, is
    the registry export's. One STRtree query (``dwithin``) in a metric CRS (``metric_crs``)."""
    cid = matched["candidate_id"]
    keep = np.array(cid.isin(set(pd.Series(ids, dtype=object).dropna())), dtype=bool)
    unseen = np.array(cid.isna(), dtype=bool)
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    track = np.isfinite(lat) & np.isfinite(lon)
    if unseen.any() and track.any():
        keep[unseen] |= _near(matched["lat"][unseen], matched["lon"][unseen], lat[track], lon[track], radius_m,
                              metric_crs(lat[track], lon[track]))
    return matched[keep].reset_index(drop=True)


def add_report_columns(df: pd.DataFrame, matched: pd.DataFrame) -> pd.DataFrame:
    """``df`` (an export's damages) with ``reports`` and ``reported_first`` (``LIST_COLUMNS``)."""
    df = df.copy()
    df["reports"], df["reported_first"] = damage_columns(matched, df["candidate_id"])
    return df


def export_table(matched: pd.DataFrame, targets: pd.DataFrame, cfg) -> pd.DataFrame:
    """``--format reports``' rows: every report with its damage (id, distance, class, status; the report's kind and
    whether the damage is of it: ``match_reports``) or 未確認, those not yet seen first (the next drive's), then by
    time posted."""
    from .store import STATUS_LABELS

    t = targets.set_index("candidate_id")
    cid = matched["candidate_id"]
    out = matched.copy()
    out["class"] = cid.map(t["class"]) if len(t) else None
    out["status"] = cid.map(t["status"]) if len(t) else None
    out["status_ja"] = [STATUS_LABELS.get(s, (s, s))[0] if isinstance(s, str) else None for s in out["status"]]
    out["class_name_ja"] = [cfg.class_name(c, "ja") if isinstance(c, str) else None for c in out["class"]]
    out["patrol"] = [s if isinstance(c, str) else UNSEEN for c, s in zip(cid, out["status_ja"])]
    counts = cid.value_counts()
    out["reports"] = pd.Series([int(counts[c]) if isinstance(c, str) else None for c in cid], index=out.index,
                               dtype=object)
    out["_seen"] = cid.notna()
    out = out.sort_values(["_seen", "posted_t", "source", "report_id"], na_position="last", kind="stable")
    return out.drop(columns=["_seen"]).reset_index(drop=True)


def write_export(rows: pd.DataFrame, path: Path, cfg) -> None:
    """``--format reports``: X.csv (UTF-8 with a BOM, as the lists: Excel opens it) or X.xlsx (headings in Japanese
    and English, the reports not yet seen in bold, a legend)."""
    from .atomic import atomic_write
    from .export import map_links
    from .report import map_url, safe_cell

    rows = rows.copy()
    rows["not_counted"] = [not_counted_text(v) for v in rows.get("not_counted", pd.Series([None] * len(rows)))]
    rows["map"] = map_links(map_url(cfg), rows["lat"], rows["lon"], rows["report_id"])
    data = rows.reindex(columns=[c for c, *_ in EXPORT_COLUMNS])
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(data, path, cfg)
        return
    with atomic_write(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(data.columns))
        for row in data.itertuples(index=False, name=None):
            w.writerow(["" if v is None or (isinstance(v, float) and v != v) else safe_cell(v) for v in row])


def _write_xlsx(data: pd.DataFrame, path: Path, cfg) -> None:
    """Sheet ``reports`` headed ``ja`` over ``en`` as the repair list's, times as Excel times on the municipality's
    clock, the reports not yet seen (未確認) in bold, the map a link; a legend sheet."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from .atomic import atomic_write
    from .report import (MAP_LINK_TEXT, XlsxLink, _excel_time, _tz, map_note, xlsx_cell, xlsx_font, xlsx_header,
                         xlsx_legend, xlsx_print_setup)

    tz = _tz(cfg)
    wb = Workbook()
    ws = wb.active
    ws.title = "reports"
    widths = xlsx_header(ws, EXPORT_COLUMNS)
    bold = xlsx_font(bold=True)
    for i, row in enumerate(data.itertuples(index=False, name=None), 2):
        unseen = row[[c for c, *_ in EXPORT_COLUMNS].index("patrol")] == UNSEEN
        for j, ((name, _, _), v) in enumerate(zip(EXPORT_COLUMNS, row), 1):
            if name == "posted_at" and isinstance(v, str):
                v = _excel_time(v, tz) or v
            elif name == "map":
                v = XlsxLink(MAP_LINK_TEXT, v) if isinstance(v, str) and v else None
            elif name == "body" and isinstance(v, str):
                v = v[:2000]
            cell = ws.cell(row=i, column=j)
            widths[j - 1] = max(widths[j - 1], min(40, xlsx_cell(cell, v, "0.0" if name == "distance_m" else None, 8)))
            if unseen and name in ("report_id", "patrol"):
                cell.font = bold
    for j, w in enumerate(widths, 1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.freeze_panes = "B2"
    xlsx_print_setup(ws, len(EXPORT_COLUMNS), len(data))
    r = cfg.reports.radius_m
    xlsx_legend(wb, cfg, "住民通報と巡回 / Citizen reports and the patrol", ("件数 reports", len(data)),
                [("巡回 patrol", f"{r:g} m 以内の損傷 (種類の一致を見よ) の状態; なければ {UNSEEN} (巡回でまだ見ていない: 次の巡回で確認)",
                  f"the status of its registry damage within {r:g} m (config reports.radius_m; see match); none: "
                  f"{UNSEEN}, not yet seen by a patrol (to check on the next drive)"),
                 ("通報の種類 kind", "カテゴリと内容の言葉から: 穴・陥没・くぼみ → ポットホール、亀甲 → 亀甲状ひび割れ、"
                  "ひび・亀裂・クラック → ひび割れ、どれでもない (段差・破損など) か穴とひびの両方 → 不明; 打ち消された言葉や"
                  "道路でない物の言葉は数えない (下の「数えない言葉」)",
                  "read from the category and text: 穴/陥没/くぼみ/pothole/hole a pothole, 亀甲/alligator an alligator "
                  "crack, ひび/亀裂/クラック/crack a crack; none of them (段差, 破損 …) or both a pothole and a crack: 不明; "
                  "a word negated or said of something else than the road does not count (not counted, below)"),
                 ("数えなかった語 words not counted", "その通報の文で数えなかった種類の言葉と、なぜか (否定・付属物・慣用語・響く: "
                  "下の「数えない言葉」の規則)。例: 穴 (否定) = 「穴は、ない」などと書かれ、ポットホールとしなかった",
                  "the kind words of the report's text that were not counted, and why (否定 negated, 付属物 said of a "
                  "roadside thing, 慣用語 an idiom, 響く resound: the rules below), e.g. 穴 (否定): the text says 穴は、"
                  "ない, so the report is not a pothole's"),
                 *[("数えない言葉 not counted", f"{w.ja} (例: {w.examples})", f"{w.en}: {w.why}")
                   for w in REPORT_WORD_RULES],
                 ("種類の一致 match", f"種類の分かる通報は {r:g} m 以内の同じ種類のいちばん近い損傷へ (同種); 亀甲状ひび割れの通報"
                  "はなければ他のひび割れへ (類似); それもなければ種類を問わずいちばん近い損傷へ (別種: 住民の言う種類と"
                  f"違う); — = 種類不明の通報 (いちばん近い損傷) か {UNSEEN}",
                  f"a report of a known kind is of the nearest damage of its kind within {r:g} m (同種 same kind); an "
                  "alligator crack's report, else of another crack (類似 similar); else of the nearest damage of any "
                  f"kind (別種 other kind: not what the resident said); — a report of no known kind (the nearest) or "
                  f"{UNSEEN}"),
                 ("並び順 order", f"{UNSEEN} が先、次に投稿日時の順", f"{UNSEEN} first, then by time posted"),
                 map_note(cfg)], EXPORT_COLUMNS)
    with atomic_write(path, "wb") as fh:
        buf = io.BytesIO()
        wb.save(buf)
        fh.write(buf.getvalue())
