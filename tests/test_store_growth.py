"""Grown since first seen (悪化, ``Store.growth``): a damage's est. area as its first and its latest drive saw it (each
drive's median), their ratio and ``grown`` by config ``store.grown_*``; on the registry's lists, GIS files and in
``patrol status``. Real data: the sample's two passes a week apart (the same unchanged damages) through the real
locate/dedupe, merged as two weekly runs; a damage made to grow by scaling its later drive's sizes in a copy."""

from __future__ import annotations

import csv
from datetime import datetime
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from detector.config import Config
from detector.store import GROWTH_COLUMNS, GrowthRule, Store

from test_cli import ok, patrol
from test_store import _oracle_candidates

P1, P2 = "toyama-2026-11-p1", "toyama-2026-11-p2"


@pytest.fixture(scope="module")
def two_passes(tmp_path_factory) -> Path:
    """The sample's two passes merged as two runs (a week apart), as the weekly workflow merges them."""
    from conftest import TOYAMA, need

    toyama = need(TOYAMA)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    path = tmp_path_factory.mktemp("growth") / "registry.gpkg"
    with Store(path) as st:
        for name, cands in zip((P1, P2), passes[:2]):
            st.merge(cands, {"run_id": name}, cfg)
    return path


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "registry.gpkg"
    shutil.copyfile(src, dst)
    return dst


def _sql(path: Path, q: str, args=()) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        rows = con.execute(q, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def _scale(path: Path, cid: str, k: float, where: str = "") -> None:
    """The sizes of ``cid``'s sightings of the second pass, each side × ``k`` (its area × k²)."""
    _sql(path, "UPDATE observations SET est_width_m = est_width_m * ?, est_length_m = est_length_m * ? "
               f"WHERE candidate_id = ? AND drive = ?{where}", (k, k, cid, P2))


def test_sample_unchanged_damages_not_grown(two_passes):
    """The sample's damages did not change in the week between its passes: none is grown. The noise measured (the
    rule's margin): ratios 1.0-1.6, the area at most 0.16 m² larger; the one at ×1.6 (0.14 -> 0.22 m²) is kept out
    by the absolute floor (grown_min_m2), not by the ratio."""
    with Store(two_passes) as st:
        g = st.growth()
        q = st.query(lists=False)
    comp = g[g["growth"].notna()]
    assert len(comp) >= 20, g  # most damages are compared (seen in 2 frames or more by each pass)
    assert set(comp["grown"]) == {0}
    ratio = comp["growth"].astype(float)
    more = comp["area_last_m2"].astype(float) - comp["area_first_m2"].astype(float)
    assert 0.95 <= ratio.min() and ratio.max() < 1.7 and more.max() < 0.2, comp
    assert (ratio >= GrowthRule().ratio).sum() >= 1  # the ratio alone would flag a small damage: the floor does not
    # the registry's query carries the columns: a whole number or None in grown, as the passes' counts
    assert list(q.columns[-len(GROWTH_COLUMNS):]) == GROWTH_COLUMNS
    assert {type(v) for v in q["grown"]} <= {int, type(None)} and (q["grown"] == 0).sum() == len(comp)
    # with one sighting enough, more damages compare and still none is grown
    g1 = Store(two_passes).growth(GrowthRule(min_sightings=1))
    assert g1["growth"].notna().sum() > len(comp) and set(g1["grown"].dropna()) == {0}


def _pick(path: Path, n_p2: int = 2) -> str:
    """A compared damage of at least 0.3 m² whose second pass saw it in exactly ``n_p2`` frames (or more: 0)."""
    st = Store(path)
    per = st.drive_areas()
    g = st.growth(GrowthRule(min_sightings=1))
    p2 = per[per["drive"] == P2].set_index("cid")["n"]
    for cid, r in g.iterrows():
        if r["growth"] is not None and r["area_first_m2"] >= 0.3 and cid in p2.index \
                and (p2[cid] == n_p2 or (n_p2 == 0 and p2[cid] >= 3)):
            return cid
    pytest.skip(f"no damage of the sample seen in {n_p2} frames by the second pass")


def test_scaled_damage_grown_others_not(two_passes, tmp_path):
    """One damage's second-pass sizes × 1.5 a side (area × 2.25): it alone is grown, on the list (csv: the columns
    after reported_first, 悪化 1), in the GeoJSON (last), in patrol status (its size per drive); the import reads the
    list back without a word about the new columns."""
    reg = _copy(two_passes, tmp_path)
    before = Store(two_passes).growth()
    cid = _pick(reg)
    _scale(reg, cid, 1.5)
    g = Store(reg).growth()
    assert g.loc[cid, "grown"] == 1 and g.loc[cid, "growth"] == pytest.approx(
        2.25 * before.loc[cid, "area_last_m2"] / before.loc[cid, "area_first_m2"], abs=0.02)
    assert g.loc[cid, "area_first_m2"] == before.loc[cid, "area_first_m2"]
    others = g.drop(index=cid)
    assert others.equals(before.drop(index=cid)) and set(others["grown"].dropna()) == {0}
    # the list
    out = tmp_path / "list.csv"
    ok(patrol("export", reg, "--format", "csv", "--out", out))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    head = list(rows[0])
    at = head.index("reported_first") + 1
    assert head[at:at + 4] == GROWTH_COLUMNS and head[-2:] == ["photo", "map"], head
    assert [r["candidate_id"] for r in rows if r["grown"] == "1"] == [cid]
    assert sum(r["grown"] == "0" for r in rows) == (before["grown"] == 0).sum() - 1  # (it was 0 before)
    row = next(r for r in rows if r["candidate_id"] == cid)
    assert float(row["growth"]) >= 2 and float(row["area_last_m2"]) > float(row["area_first_m2"])
    # the import ignores them: the list back, one damage confirmed by the crew
    row["status"] = "confirmed"
    with open(out, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=head)
        w.writeheader()
        w.writerows(rows)
    r = ok(patrol("import-verification", reg, out))
    assert "grown" not in r.stdout + r.stderr and Store(reg).status_of(cid) == "confirmed", r.stdout + r.stderr
    # the GeoJSON: the four last, numbers
    gj = tmp_path / "list.geojson"
    ok(patrol("export", reg, "--format", "geojson", "--out", gj))
    props = {f["id"]: f["properties"] for f in json.loads(gj.read_text(encoding="utf-8"))["features"]}
    assert list(props[cid])[-4:] == GROWTH_COLUMNS and props[cid]["grown"] == 1
    assert isinstance(props[cid]["growth"], float)
    # patrol status: the size per drive, the two compared, grown
    s = ok(patrol("status", reg, cid)).stdout
    assert "grown (悪化) ×" in s and s.count("compared") == 2 and P1 in s and P2 in s, s


def test_one_odd_sighting_is_not_growth(two_passes, tmp_path):
    """A drive's area is the median of its sightings: one sighting of ten times the size among three or more does
    not make the damage grown; all of them do."""
    reg = _copy(two_passes, tmp_path)
    cid = _pick(reg, n_p2=0)
    (oid,) = _sql(reg, "SELECT MIN(obs_id) FROM observations WHERE candidate_id = ? AND drive = ?", (cid, P2))[0]
    _sql(reg, "UPDATE observations SET est_width_m = est_width_m * 3.2, est_length_m = est_length_m * 3.2 "
              "WHERE obs_id = ?", (oid,))
    assert Store(reg).growth().loc[cid, "grown"] == 0
    _scale(reg, cid, 1.5)
    assert Store(reg).growth().loc[cid, "grown"] == 1


def test_rule_from_config_and_one_frame_drives(two_passes, tmp_path):
    """A drive that saw the damage in one frame is not compared by default (grown_min_sightings 2): its growth is
    unknown (empty), not 0; with grown_min_sightings 1 it is; grown_ratio and grown_min_m2 move the cut."""
    reg = _copy(two_passes, tmp_path)
    cid = _pick(reg, n_p2=1)
    _scale(reg, cid, 2.0)
    g = Store(reg).growth()
    assert cid not in g.index or (g.loc[cid, "growth"] is None and g.loc[cid, "grown"] is None)
    one = Config.model_validate({"store": {"grown_min_sightings": 1}})
    assert Store.for_config(reg, one).growth().loc[cid, "grown"] == 1
    strict = Config.model_validate({"store": {"grown_min_sightings": 1, "grown_ratio": 5}})
    assert Store.for_config(reg, strict).growth().loc[cid, "grown"] == 0
    with pytest.raises(ValueError):
        Config.model_validate({"store": {"grown_ratio": 1.0}})  # no growth at all is no cut


def test_report_html_grown_filter_and_popup(two_passes, tmp_path):
    """``patrol export --format html``: the 悪化 filter shows on a registry's map, lists the grown damage alone, says
    so in the count line and is kept in the link (grown=1); the damage's popup says its size change. A page without
    any comparison (a run's) keeps the filter hidden: test_report's own pages."""
    from conftest import ROOT, TOYAMA
    from test_report import FRAMES, console_errors, probe_of, render, selfcheck

    reg = _copy(two_passes, tmp_path)
    cid = _pick(reg)
    _scale(reg, cid, 1.5)
    out = tmp_path / "map.html"
    ok(patrol("export", reg, "--format", "html", "--roads", TOYAMA / "roads.geojson", "--out", out))
    page = out.read_text(encoding="utf-8")
    probe = """(function () {
      function shownRows() { return [].filter.call(document.querySelectorAll('#tbl tbody tr'), function (r) {
        return r.style.display !== 'none'; }).map(function (r) { return r.firstChild.textContent; }); }
      var pop = document.querySelector('.leaflet-popup-content');
      function rings() { return [].map.call(document.querySelectorAll('#map path.grown-ring'), function (p) {
        return p.getAttribute('stroke-dasharray'); }); }
      var res = {shown: !document.getElementById('l-grown').hidden, value: document.getElementById('f-grown').value,
              rows: shownRows(), count: document.getElementById('count').textContent, hash: location.hash,
              popup: pop ? pop.textContent : '', rings: rings(), legend: document.querySelector('.legend').textContent,
              markers: document.querySelectorAll('#map path.leaflet-interactive').length};
      var g = document.getElementById('f-grown'), t = document.getElementById('f-text');
      g.value = ''; g.dispatchEvent(new Event('change'));
      res.ringsAll = rings().length; res.markersAll = document.querySelectorAll('#map path.leaflet-interactive').length;
      t.value = 'no-such-damage'; t.dispatchEvent(new Event('input'));
      res.ringsNone = rings().length;
      return res; })()"""
    script = ("<script>setTimeout(function () { document.documentElement.setAttribute('data-probe', JSON.stringify("
              + probe + ")); }, 2000);</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>"),
                      encoding="utf-8")
    dom, err = render(probed, f"#id={cid}&grown=1", "--window-size=1400,1000")
    assert selfcheck(dom).startswith("report-ok:") and not console_errors(err), (selfcheck(dom), console_errors(err))
    p = probe_of(dom)
    assert p["shown"] and p["value"] == "1" and p["rows"] == [cid], p
    assert "悪化 / grown" in p["count"] and p["count"].startswith("1 / ") and "grown=1" in p["hash"], p
    assert "面積の変化" in p["popup"] and "悪化 / grown" in p["popup"] and " m²" in p["popup"], p["popup"]
    # the map's cue: an orange dashed ring around the grown damage's marker alone, shown and hidden with it; the
    # legend explains it
    assert p["rings"] == ["6,4"] and p["markers"] == 1 and p["ringsAll"] == 1 and p["markersAll"] > 20, p
    assert p["ringsNone"] == 0, p
    assert "orange dashed outer ring = grown since first seen" in p["legend"], p["legend"]


def test_report_html_without_comparison_refuses_grown_link(tmp_path):
    """A page where no damage was compared (a registry of one drive): the 悪化 filter stays hidden, and a link's
    grown=1 is named in the note line, not applied as a hidden filter that would list nothing."""
    from conftest import TOYAMA, need
    from test_report import FRAMES, probe_of, render

    toyama = need(TOYAMA)
    cfg = Config()
    passes, _ = _oracle_candidates(toyama, cfg)
    reg = tmp_path / "registry.gpkg"
    with Store(reg) as st:
        st.merge(passes[0], {"run_id": P1}, cfg)
    out = tmp_path / "map.html"
    ok(patrol("export", reg, "--format", "html", "--out", out))
    probe = """(function () { return {shown: !document.getElementById('l-grown').hidden,
      note: document.getElementById('note').textContent, rows: [].filter.call(document.querySelectorAll('#tbl tbody tr'),
      function (r) { return r.style.display !== 'none'; }).length, n: document.querySelectorAll('#tbl tbody tr').length,
      rings: document.querySelectorAll('#map path.grown-ring').length, legend: document.querySelector('.legend').textContent}; })()"""
    script = ("<script>setTimeout(function () { document.documentElement.setAttribute('data-probe', JSON.stringify("
              + probe + ")); }, 2000);</script>")
    page = out.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<script", FRAMES + "<script", 1).replace("</body>", script + "</body>"),
                      encoding="utf-8")
    p = probe_of(render(probed, "#grown=1", "--window-size=1400,1000")[0])
    assert not p["shown"] and "grown=1" in p["note"] and p["rows"] == p["n"] > 0, p
    assert p["rings"] == 0 and "grown since first seen" not in p["legend"], p  # (no ring, no legend line)


def test_reopened_damage_compared_from_after_its_repair(two_passes, tmp_path):
    """A damage repaired between the two passes (``patrol status --set repaired --at`` a day between them) is reopened
    by the later pass's sightings (再発: the registry holds them, so the repair dated before them reopens it at once).
    Its growth compares the drives after the repair only: the later pass alone, so no two drives to compare (not
    the old damage against the new one); a damage never repaired keeps its comparison. Scaled × 2.25 in the later
    pass, the reopened damage is still not grown: before the change it was (first pass vs. the new damage)."""
    reg = _copy(two_passes, tmp_path)
    cid = _pick(reg)
    _scale(reg, cid, 1.5)
    assert Store(reg).growth().loc[cid, "grown"] == 1  # (the first pass against the second)
    per = Store(reg).drive_areas(cid).set_index("drive")
    st = Store(reg)
    mid = datetime.fromtimestamp((per.loc[P1, "t_last"] + per.loc[P2, "t"]) / 2, st.tz)
    assert mid.date() < datetime.fromtimestamp(per.loc[P2, "t"], st.tz).date(), per  # (a day between the passes)
    r = ok(patrol("status", reg, cid, "--set", "repaired", "--at", mid.strftime("%Y-%m-%d"), "--note", "patched"))
    assert Store(reg).status_of(cid) == "reopened", r.stdout + r.stderr
    g = Store(reg).growth()
    assert g.loc[cid, "growth"] is None and g.loc[cid, "grown"] is None, g.loc[cid]
    # the one drive after the repair is both first and latest: the new damage's size
    assert g.loc[cid, "area_first_m2"] == g.loc[cid, "area_last_m2"] == round(per.loc[P2, "area"], 2)
    before = Store(two_passes).growth()
    assert g.drop(index=cid).equals(before.drop(index=cid))  # the others unchanged
    s = ok(patrol("status", reg, cid)).stdout
    assert "no two drives after its repair of" in s and "before the repair (補修前)" in s and \
        ")  compared" not in s, s
    # the list says the same
    out = tmp_path / "list.csv"
    ok(patrol("export", reg, "--format", "csv", "--out", out))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["candidate_id"] == cid)
    assert row["grown"] == "" and row["growth"] == "" and float(row["area_first_m2"]) == g.loc[cid, "area_first_m2"]


def test_ledger_names_the_grown_damage(two_passes, tmp_path):
    """The photo ledger (写真台帳) of a registry with damages compared has a 面積の変化 row after 最終確認 in every block:
    ``悪化 ×2.25 (0.48 → 1.08 m²)`` on the grown damage's, the ratio and areas (no 悪化) on the others compared, empty
    on those not compared; the legend explains it; the filled-in ledger still imports (the row is not the crew's)."""
    import openpyxl

    reg = _copy(two_passes, tmp_path)
    cid = _pick(reg)
    _scale(reg, cid, 1.5)
    g = Store(reg).growth()
    out = tmp_path / "写真台帳.xlsx"
    ok(patrol("export", reg, "--format", "ledger", "--out", out))
    wb = openpyxl.load_workbook(out)
    ws = wb["ledger"]
    blocks, cur = {}, None
    for r in range(1, ws.max_row + 1):
        label, value = ws.cell(row=r, column=3).value, ws.cell(row=r, column=4)
        if label == "ID id":
            cur = blocks.setdefault(value.value, [])
        if label is not None and cur is not None:
            cur.append((label, value))
    assert len(blocks) == len(Store(reg).query(lists=False))
    for c, rows in blocks.items():
        labels = [lab for lab, _ in rows]
        at = labels.index("最終確認 last seen") + 1
        assert labels[at] == "面積の変化 size change", labels
        v = rows[at][1].value
        r = g.loc[c] if c in g.index else None
        if r is None or r["growth"] is None:
            assert v is None, (c, v)
        else:
            want = f"×{r['growth']:.2f} ({r['area_first_m2']:.2f} → {r['area_last_m2']:.2f} m²)"
            assert v == ("悪化 " + want if c == cid else want), (c, v)
    assert blocks[cid][labels.index("面積の変化 size change")][1].value.startswith("悪化 ×2.2")
    legend = [c.value for c in wb["legend"]["A"]]
    assert "面積の変化 size change" in legend
    # the crew fills in one block's 状態: the import reads it as before
    for r in range(1, ws.max_row + 1):
        if ws.cell(row=r, column=3).value == "ID id" and ws.cell(row=r, column=4).value == cid:
            ws.cell(row=r + 2, column=4).value = "確認済み"
            break
    wb.save(out)
    res = ok(patrol("import-verification", reg, out))
    assert Store(reg).status_of(cid) == "confirmed", res.stdout + res.stderr
