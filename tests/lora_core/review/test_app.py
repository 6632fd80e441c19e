"""`lorakit review`'s API (Starlette's TestClient, every endpoint) and its security rules: the token,
the Host header, the Origin of a POST, JSON only, no file outside the dataset, and the journal."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

from lora_core.review.app import COOKIE, ReviewState, create_app
from lora_core.review.journal import JOURNAL_FILE, Journal
from lora_core.session import DatasetSession
from lora_core.testing import make_csv_dataset, make_sidecar_dataset, write_photo

TOKEN = "test-token-123"
CAPTIONS = {"a.png": "zyla, red coat, rain", "b.png": "zyla, umbrella,, night", "c.png": "zyla, neon city, fog",
            "d.png": "zyla, alley, signs", "e.png": "zyla, car, rain"}


def _client(folder, registry, host="testserver"):
    state = ReviewState(DatasetSession(folder, registry=registry))
    client = TestClient(create_app(state, TOKEN, {host}), base_url=f"http://{host}")
    client.cookies.set(COOKIE, TOKEN)
    return client, state


@pytest.fixture
def sidecars(tmp_path):
    return make_sidecar_dataset(tmp_path / "ds", CAPTIONS)


def test_the_state_lists_every_caption_with_its_findings(sidecars, registry):
    client, _ = _client(sidecars, registry)
    state = client.get("/api/state").json()
    assert state["dataset"]["records"] == 5 and state["unsaved"] == [] and state["journal"]["undo"] == 0
    by_image = {r["image"]: r for r in state["records"]}
    assert by_image["b.png"]["caption"] == "zyla, umbrella,, night"
    empty_tag = [f for f in by_image["b.png"]["findings"] if f["code"] == "LK104"]
    assert empty_tag and empty_tag[0]["span"] and empty_tag[0]["fix"]["applicability"] == "safe"
    assert "LK104" in state["rules"] and "## What it does" in state["rules"]["LK104"]["doc"]


def test_an_edit_is_relinted_in_memory_and_saved_atomically(sidecars, registry):
    client, _ = _client(sidecars, registry)
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "b.png")
    answer = client.post("/api/edit", json={"i": index, "caption": "zyla, umbrella, night"}).json()
    changed = {r["image"]: r for r in answer["records"]}
    assert not [f for f in changed["b.png"]["findings"] if f["code"] == "LK104"] and changed["b.png"]["unsaved"]
    assert answer["unsaved"] == [index]
    assert (sidecars / "b.txt").read_text() == "zyla, umbrella,, night\n"  # nothing written before Save
    saved = client.post("/api/save", json={}).json()
    assert saved["written"] == [str(sidecars / "b.txt")] and saved["unsaved"] == []
    assert (sidecars / "b.txt").read_text() == "zyla, umbrella, night\n"  # the file's newline kept
    assert saved["journal"] == {"undo": 1, "redo": 0, "next_undo": "save 1 file(s)", "next_redo": None}


def test_undo_and_redo_work_across_a_restart(sidecars, registry):
    client, _ = _client(sidecars, registry)
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "a.png")
    client.post("/api/edit", json={"i": index, "caption": "zyla, blue coat, rain"})
    client.post("/api/save", json={})
    restarted, _ = _client(sidecars, registry)  # a new server process reads the journal back
    assert restarted.post("/api/undo", json={}).json()["journal"]["redo"] == 1
    assert (sidecars / "a.txt").read_text() == "zyla, red coat, rain\n"
    again, _ = _client(sidecars, registry)
    assert again.post("/api/redo", json={}).status_code == 200
    assert (sidecars / "a.txt").read_text() == "zyla, blue coat, rain\n"


def test_a_file_changed_on_disk_is_never_overwritten(sidecars, registry):
    client, _ = _client(sidecars, registry)
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "c.png")
    client.post("/api/edit", json={"i": index, "caption": "zyla, neon city, thick fog"})
    (sidecars / "c.txt").write_text("edited elsewhere\n")
    assert client.get("/api/state").json()["changed_on_disk"] == [str(sidecars / "c.txt")]
    refused = client.post("/api/save", json={})
    assert refused.status_code == 409 and "changed on disk since it was read" in refused.json()["error"]
    assert (sidecars / "c.txt").read_text() == "edited elsewhere\n"
    # an undo whose file changed since the save is refused the same way
    client.post("/api/reload", json={})
    client.post("/api/edit", json={"i": index, "caption": "zyla, fog"})
    client.post("/api/save", json={})
    (sidecars / "c.txt").write_text("edited again\n")
    undo = client.post("/api/undo", json={})
    assert undo.status_code == 409 and "changed on disk since lorakit review saved it" in undo.json()["error"]
    assert (sidecars / "c.txt").read_text() == "edited again\n"


def test_fix_previews_bulk_fixes_and_replace_over_a_filter(sidecars, registry):
    client, _ = _client(sidecars, registry)
    records = client.get("/api/state").json()["records"]
    b = next(r for r in records if r["image"] == "b.png")
    finding = next(f for f in b["findings"] if f["code"] == "LK104")
    preview = client.post("/api/fix-preview", json={"i": b["i"], "id": finding["id"]}).json()
    assert preview["before"] == "zyla, umbrella,, night" and preview["after"] == "zyla, umbrella, night"
    assert "-zyla, umbrella,, night" in preview["diff"] and "+zyla, umbrella, night" in preview["diff"]
    bulk = client.post("/api/fix-all", json={"unsafe": False, "apply": False}).json()
    assert [c["after"] for c in bulk["changes"]] == ["zyla, umbrella, night"] and bulk["unsaved"] == []
    rain = [r["i"] for r in records if "rain" in r["caption"]]
    replaced = client.post("/api/replace", json={"find": "RAIN", "replace": "drizzle", "indexes": rain,
                                                 "apply": True}).json()
    assert sorted(c["after"] for c in replaced["changes"]) == ["zyla, car, drizzle", "zyla, red coat, drizzle"]
    assert sorted(replaced["unsaved"]) == sorted(rain)
    regex = client.post("/api/replace", json={"find": "(", "replace": "x", "regex": True})
    assert regex.status_code == 409 and "not a regular expression" in regex.json()["error"]
    assert client.post("/api/revert", json={}).json()["unsaved"] == []


def test_a_csv_dataset_is_edited_through_its_own_file(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "zyla, red coat"), ("b.png", 'zyla, "quoted", rain')])
    client, _ = _client(path, registry)
    client.post("/api/edit", json={"i": 1, "caption": "zyla, quoted, rain"})
    client.post("/api/save", json={})
    assert path.read_text(encoding="utf-8") == 'file_name,text\na.png,"zyla, red coat"\nb.png,"zyla, quoted, rain"\n'


# -- the security rules ----------------------------------------------------------------------


def test_no_token_no_access(sidecars, registry):
    client, _ = _client(sidecars, registry)
    client.cookies.clear()
    assert client.get("/api/state").status_code == 403
    assert client.get("/").status_code == 403
    assert client.get("/?token=wrong").status_code == 403
    assert client.get("/api/state", headers={"X-Lorakit-Token": TOKEN}).status_code == 200
    opened = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookie = opened.headers["set-cookie"]
    assert f"{COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/state").status_code == 200  # the cookie from then on


def test_a_foreign_host_or_origin_is_refused(sidecars, registry):
    client, _ = _client(sidecars, registry)
    rebound = client.get("/api/state", headers={"Host": "evil.example:8765"})
    assert rebound.status_code == 403 and "DNS rebinding" in rebound.text
    cross = client.post("/api/save", json={}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert client.post("/api/save", json={}, headers={"Origin": "http://testserver"}).status_code == 200
    form = client.post("/api/save", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415  # a cross-site form cannot change anything
    assert client.get("/api/save").status_code == 405  # no state change by GET
    assert client.request("PUT", "/api/state").status_code == 405


def test_files_are_served_by_index_inside_the_dataset_only(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, rain", "b.png": "zyla, fog"})
    secret = tmp_path / "secret.png"
    write_photo(secret)
    (folder / "b.png").unlink()
    os.symlink(secret, folder / "b.png")  # an image that leads out of the dataset
    client, _ = _client(folder, registry)
    records = {r["image"]: r["i"] for r in client.get("/api/state").json()["records"]}
    assert client.get(f"/thumb/{records['a.png']}").headers["content-type"] == "image/jpeg"
    assert client.get(f"/image/{records['a.png']}").content == (folder / "a.png").read_bytes()
    assert client.get(f"/image/{records['b.png']}").status_code == 404
    assert client.get(f"/thumb/{records['b.png']}").status_code == 404
    for path in ("/image/99", "/image/-1", "/image/..%2F..%2Fetc%2Fpasswd", "/static/..%2Fapp.py", "/thumb/x"):
        assert client.get(path).status_code == 404, path


def test_a_caption_sidecar_linked_out_of_the_dataset_is_never_written(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, rain", "b.png": "zyla, fog"})
    victim = tmp_path / "victim.txt"
    victim.write_text("zyla, fog\n")
    (folder / "b.txt").unlink()
    os.symlink(victim, folder / "b.txt")
    client, _ = _client(folder, registry)
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "b.png")
    client.post("/api/edit", json={"i": index, "caption": "zyla, thick fog"})
    refused = client.post("/api/save", json={})
    assert refused.status_code == 409 and "outside the dataset" in refused.json()["error"]
    assert victim.read_text() == "zyla, fog\n"


def test_bad_requests_are_one_clear_error(sidecars, registry):
    client, _ = _client(sidecars, registry)
    for path, body in (("/api/edit", {"i": 99, "caption": "x"}), ("/api/edit", {"i": 0}),
                       ("/api/edit", {"i": True, "caption": "x"}), ("/api/fix-preview", {"i": 0, "id": 10_000}),
                       ("/api/replace", {"find": "", "replace": "x"}), ("/api/fix-all", {"indexes": [99]})):
        answer = client.post(path, json=body)
        assert answer.status_code == 409 and answer.json()["error"], (path, body)
    broken = client.post("/api/edit", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 409 and broken.json()["error"] == "the request body is not JSON"


def test_a_journal_that_came_with_the_dataset_is_not_trusted(sidecars, registry):
    """A planted journal (not signed by this machine's key) must never make undo write its bytes."""
    import json

    cache = sidecars / ".lorakit_cache"
    cache.mkdir()
    planted = {"signature": "0" * 64, "body": {"root": os.path.realpath(sidecars), "undo": [
        {"label": "x", "files": [{"path": "a.txt", "before": "eJwrSS0uAQAEXQHB", "after": "", "before_sha": "",
                                  "after_sha": ""}]}], "redo": []}}
    (cache / JOURNAL_FILE).write_text(json.dumps(planted))
    assert Journal.load(sidecars).undo == []
    client, _ = _client(sidecars, registry)
    assert client.get("/api/state").json()["journal"]["undo"] == 0


def test_undecodable_bytes_travel_through_the_page_and_back_exactly(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, rain", "b.png": "zyla, fog"})
    (folder / "a.txt").write_bytes(b"zyla, caf\xe9, rain\n")  # cp1252 bytes in a UTF-8 dataset
    client, _ = _client(folder, registry)
    state = client.get("/api/state")
    assert b"\\udce9" in state.content  # escaped in ASCII JSON, not a 500
    record = next(r for r in state.json()["records"] if r["image"] == "a.png")
    assert record["caption"] == "zyla, caf\udce9, rain"
    import json

    body = json.dumps({"i": record["i"], "caption": record["caption"] + ", night"})  # as JSON.stringify sends it
    assert client.post("/api/edit", content=body, headers={"Content-Type": "application/json"}).status_code == 200
    client.post("/api/save", json={})
    assert (folder / "a.txt").read_bytes() == b"zyla, caf\xe9, rain, night\n"


def test_the_detail_view_knows_tokens_size_and_the_duplicate(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, red coat", "b.png": "zyla, another coat"})
    (folder / "b.png").write_bytes((folder / "a.png").read_bytes())  # the same picture twice (LK605)
    (folder / "lorakit.toml").write_text('[dataset]\nmodel = "sdxl"\n')
    client, _ = _client(folder, registry)
    records = {r["image"]: r["i"] for r in client.get("/api/state").json()["records"]}
    detail = client.get(f"/api/detail/{records['b.png']}").json()
    assert detail["tokens"] == 5 and detail["budget"] == 75 and detail["model"] == "SDXL"
    assert detail["size"] == [512, 512] and detail["duplicate_of"] == records["a.png"]
    edited = client.post("/api/edit", json={"i": records["a.png"], "caption": "zyla, " + "red coat, " * 30}).json()
    assert edited["detail"]["tokens"] > 75
    assert client.get("/api/detail/99").status_code == 404


def test_a_finding_id_survives_edits_of_other_captions(sidecars, registry):
    client, _ = _client(sidecars, registry)
    records = {r["image"]: r for r in client.get("/api/state").json()["records"]}
    finding = next(f for f in records["b.png"]["findings"] if f["code"] == "LK104")
    client.post("/api/edit", json={"i": records["a.png"]["i"], "caption": "zyla, ,red coat,, rain"})  # new findings
    preview = client.post("/api/fix-preview", json={"i": records["b.png"]["i"], "id": finding["id"]})
    assert preview.status_code == 200 and preview.json()["after"] == "zyla, umbrella, night"


def test_pin_writes_the_inferred_settings_once(tmp_path, registry):
    folder = make_sidecar_dataset(tmp_path / "ds", {f"{i}.png": f"zyla, red coat, scene {i}" for i in range(6)})
    client, _ = _client(folder, registry)
    preview = client.post("/api/pin", json={}).json()
    assert preview["applied"] is False and 'trigger = "zyla"' in preview["text"]
    assert not (folder / "lorakit.toml").exists()
    written = client.post("/api/pin", json={"apply": True}).json()
    assert written["applied"] and (folder / "lorakit.toml").read_text() == preview["text"]
    assert "lorakit.toml" in written["settings"]
    again = client.post("/api/pin", json={"apply": True})
    assert again.status_code == 409 and "exists: edit it" in again.json()["error"]


def test_stats_are_of_the_captions_in_memory(sidecars, registry):
    client, _ = _client(sidecars, registry)
    assert client.get("/api/stats").json()["captions"] == 5
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "a.png")
    client.post("/api/edit", json={"i": index, "caption": "zyla, rain, " + ", ".join(f"tag{n}" for n in range(40))})
    stats = client.get("/api/stats").json()
    assert stats["length"]["max"] > 75 and stats["images"]["count"] == 5
    assert sum(stats["length"]["histogram"]["counts"]) == 5


def test_the_caption_button_uses_the_configured_captioner(tmp_path, registry):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from PIL import Image

    from lora_core.captioning import CaptionOptions
    from lora_core.testing.tiny_taggers import tiny_wd_tagger

    model = tiny_wd_tagger(tmp_path / "wd")
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, old caption", "b.png": "zyla, fog"})
    Image.new("RGB", (64, 64), (220, 20, 20)).save(folder / "a.png")
    options = CaptionOptions(captioners=["wd-tagger"], models={"wd-tagger": str(model)},
                             captioner_options={"wd-tagger": {"exclude": "^_^"}})
    state = ReviewState(DatasetSession(folder, registry=registry), options)
    client = TestClient(create_app(state, TOKEN, {"testserver"}), base_url="http://testserver")
    client.cookies.set(COOKIE, TOKEN)
    assert client.get("/api/state").json()["captioner"] == "wd-tagger"
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "a.png")
    answer = client.post("/api/caption", json={"i": index}).json()
    assert answer["caption"] == "red theme, simple background"  # the tiny tagger's tags, post-processed
    assert answer["unsaved"] == [index] and (folder / "a.txt").read_text() == "zyla, old caption\n"
    plain, _ = _client(folder, registry)
    refused = plain.post("/api/caption", json={"i": index})
    assert refused.status_code == 409 and "--captioner NAME" in refused.json()["error"]


def test_drop_previews_moves_and_undo_redo_put_it_back_across_a_restart(tmp_path, registry):
    path = make_csv_dataset(tmp_path / "ds", [("a.png", "zyla, red coat"), ("b.png", "zyla, rain")])
    folder = path.parent
    client, _ = _client(path, registry)
    index = next(r["i"] for r in client.get("/api/state").json()["records"] if r["image"] == "a.png")
    stale = client.post("/api/drop", json={"i": index, "image": "b.png"})
    assert stale.status_code == 409 and "reload" in stale.json()["error"]
    preview = client.post("/api/drop", json={"i": index, "image": "a.png"}).json()
    assert preview["applied"] is False and preview["moves"] == [["a.png", ".lorakit_dropped/a.png"]]
    [rewrite] = preview["rewrites"]
    assert rewrite["path"] == "metadata.csv" and '-a.png,"zyla, red coat"' in rewrite["diff"]
    assert (folder / "a.png").exists()
    done = client.post("/api/drop", json={"i": index, "image": "a.png", "apply": True}).json()
    assert [r["image"] for r in done["records"]] == ["b.png"] and done["journal"]["next_undo"] == "drop a.png"
    assert not (folder / "a.png").exists() and "a.png" not in path.read_text()
    restarted, _ = _client(path, registry)
    undone = restarted.post("/api/undo", json={}).json()
    assert sorted(r["image"] for r in undone["records"]) == ["a.png", "b.png"]
    assert (folder / "a.png").exists() and not (folder / ".lorakit_dropped" / "a.png").exists()
    assert path.read_text() == 'file_name,text\na.png,"zyla, red coat"\nb.png,"zyla, rain"\n'
    again, _ = _client(path, registry)
    assert [r["image"] for r in again.post("/api/redo", json={}).json()["records"]] == ["b.png"]
    (folder / "a.png").write_bytes(b"a new picture took the old name")  # undoing now would overwrite it
    refused = again.post("/api/undo", json={})
    assert refused.status_code == 409 and "exists" in refused.json()["error"]
    assert (folder / ".lorakit_dropped" / "a.png").exists() and "a.png" not in path.read_text()
