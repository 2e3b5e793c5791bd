"""Media from Trackio clients: staged uploads, placement in trackio's layout, `GET /file`."""

from __future__ import annotations

import io
import os
import time

import pytest

from trackio_flask import create_app, media

TOKEN = "s3cret-token"
AUTH = {"X-Trackio-Write-Token": TOKEN}


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                       "RATELIMIT_ENABLED": False})


def stage(client, content=b"\x89PNG data", name="img.png", headers=AUTH):
    return client.post("/api/upload", data={"files": [(io.BytesIO(content), name)]},
                       headers=headers, content_type="multipart/form-data")


def place(client, path, project="p", run="r", step=3, orig_name="img.png", relative_path=None):
    entry = {"project": project, "run": run, "run_id": "rid", "step": step,
             "relative_path": relative_path, "uploaded_file": {"path": path,
                                                               "orig_name": orig_name}}
    response = client.post("/api/bulk_upload_media", json={"args": [[entry], None]},
                           headers=AUTH)
    return response.status_code, response.get_json()


def fetch(client, path):
    with client.get("/file", query_string={"path": path}) as response:
        return response.status_code, response.headers, response.data


def test_an_upload_lands_where_trackios_rows_point(client, data_dir):
    staged = stage(client).json["paths"][0]
    assert place(client, staged) == (200, {"data": None})
    target = data_dir / "media" / "p" / "r" / "3" / "img.png"
    assert target.read_bytes() == b"\x89PNG data"
    assert not os.path.exists(staged)
    status, headers, body = fetch(client, "p/r/3/img.png")
    assert (status, body) == (200, b"\x89PNG data")
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in headers["Content-Security-Policy"]
    # trackio's dashboard asks with the absolute path under get_settings()["media_dir"].
    media_dir = client.post("/api/get_settings", json={}).json["data"]["media_dir"]
    assert fetch(client, f"{media_dir}/p/r/3/img.png")[0] == 200


@pytest.mark.parametrize("name,kind", [("page.html", "text/html"), ("pic.svg", "image/svg+xml")])
def test_html_and_svg_are_served_inert(client, name, kind):
    payload = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    place(client, stage(client, payload, name).json["paths"][0], orig_name=name)
    status, headers, _ = fetch(client, f"p/r/3/{name}")
    assert status == 200 and headers["Content-Type"].startswith(kind)
    policy = headers["Content-Security-Policy"]
    assert "sandbox" in policy and "default-src 'none'" in policy and "script-src" not in policy


def test_project_files_go_under_files_and_are_listed(client, data_dir):
    staged = stage(client, b"a: 1", "config.yaml").json["paths"][0]
    assert place(client, staged, run=None, step=None, orig_name="config.yaml",
                 relative_path="conf")[0] == 200
    listed = client.post("/api/get_project_files", json=["p"]).json["data"]
    assert listed == [{"name": "conf/config.yaml",
                       "path": str(data_dir / "media" / "p" / "files" / "conf" / "config.yaml"),
                       "size": 4}]


@pytest.mark.parametrize("run,step,message", [
    ("../other", 3, "cannot be used as a folder name"),
    ("a/../../x", 3, "cannot be used as a folder name"),
    ("nul\x00byte", 3, "cannot be used as a folder name"),
    (None, 3, "requires a run"),
    ("r", 1.5, "'step'"),
    ("r", True, "'step'"),
])
def test_hostile_names_are_refused_and_their_staged_files_dropped(client, data_dir, run, step,
                                                                  message):
    staged = stage(client).json["paths"][0]
    status, body = place(client, staged, run=run, step=step)
    assert status == 400 and message in body["error"] and body["error"].startswith("entry 0")
    assert not os.path.exists(staged)
    assert not (data_dir / "media").exists() or not any((data_dir / "media").rglob("*.png"))


def test_file_names_lose_their_folders(client, data_dir):
    staged = stage(client).json["paths"][0]
    assert place(client, staged, orig_name="../../../../etc/evil.png")[0] == 200
    assert (data_dir / "media" / "p" / "r" / "3" / "evil.png").is_file()


def test_a_leading_slash_in_a_run_name_is_refused_not_merged_with_its_twin(client, data_dir):
    # "/abs" would share the folder of run "abs" and overwrite its files (issue 18, D17).
    assert place(client, stage(client).json["paths"][0], run="/abs")[0] == 400
    assert not (data_dir / "media").exists() or not any((data_dir / "media").rglob("*.png"))


@pytest.mark.parametrize("path", ["/etc/passwd", "relative.png", None, 7])
def test_only_files_this_server_staged_can_be_placed(client, data_dir, path):
    status, body = place(client, path)
    assert status == 400
    assert any(text in body["error"] for text in ("not created by this Trackio server",
                                                  "valid path"))


def test_a_forged_name_in_the_staging_folder_is_refused(client, data_dir):
    stage(client)
    secret = data_dir / ".uploads" / "notes.txt"
    secret.write_text("x")
    status, body = place(client, str(secret))
    assert status == 400 and "not created by this Trackio server" in body["error"]


def test_a_planted_link_cannot_lead_a_placement_outside(client, data_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "media" / "p").mkdir(parents=True)
    os.symlink(outside, data_dir / "media" / "p" / "r")
    status, body = place(client, stage(client).json["paths"][0])
    assert status == 400 and "outside the media folder" in body["error"]
    assert not any(outside.iterdir())


def test_uploads_need_the_write_token(client, data_dir):
    assert stage(client, headers={}).status_code == 403
    assert not (data_dir / ".uploads").exists()
    assert client.post("/api/bulk_upload_media", json={"uploads": []}).status_code == 403


def test_uploads_are_size_limited(data_dir):
    client = create_app({"DATA_DIR": data_dir, "WRITE_TOKEN": TOKEN, "TESTING": True,
                         "MAX_UPLOAD_MB": 1, "RATELIMIT_ENABLED": False}).test_client()
    # A hand-built multipart body: werkzeug's builder spools big bodies to a file that only a
    # reader of the whole body would close.
    body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            b"\r\n" + b"x" * (2 * 2**20) + b"\r\n--b--\r\n")
    response = client.post("/api/upload", data=body, headers=AUTH,
                           content_type="multipart/form-data; boundary=b")
    assert response.status_code == 413 and "error" in response.json
    assert not any((data_dir / ".uploads").glob("*")) if (data_dir / ".uploads").exists() else True


def test_an_upload_without_files_is_400(client):
    response = client.post("/api/upload", data={}, headers=AUTH,
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "files" in response.json["error"]


def test_unclaimed_staged_files_expire(client, data_dir):
    old = stage(client).json["paths"][0]
    past = time.time() - media.STAGED_MAX_AGE_S - 10
    os.utime(old, (past, past))
    media._last_sweep.clear()  # the staging folder is swept at most once a minute
    stage(client)
    assert not os.path.exists(old)


@pytest.mark.parametrize("path", ["../p.db", "/etc/passwd", "../../../../etc/passwd",
                                  "p/../../p.db", "", "p/r/3/missing.png", ".uploads/x",
                                  "\x00"])
def test_file_serves_nothing_outside_the_media_folder(client, data_dir, project_db, path):
    (data_dir / ".uploads").mkdir(exist_ok=True)
    (data_dir / ".uploads" / "x").write_text("staged")
    assert fetch(client, path)[0] in (400, 404)


def test_file_refuses_databases_and_links_out_of_the_media_folder(client, data_dir, tmp_path):
    folder = data_dir / "media" / "p"
    folder.mkdir(parents=True)
    (folder / "copy.db").write_bytes(b"SQLite format 3\x00")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    os.symlink(secret, folder / "link.txt")
    assert fetch(client, "p/copy.db")[0] == 404
    assert fetch(client, "p/link.txt")[0] == 404


def test_file_without_a_path_is_400(client):
    assert client.get("/file").status_code == 400


def test_trackio_reads_media_rows_we_stored(client, data_dir):
    """trackio's own server finds the file a media row (stored here) points at."""
    from test_trackio_api_reads import trackio_answers

    place(client, stage(client).json["paths"][0])
    row = {"project": "p", "run": "r", "run_id": "rid", "step": 3,
           "metrics": {"img": {"_type": "trackio.image", "file_path": "p/r/3/img.png"}}}
    assert client.post("/api/bulk_log", json={"logs": [row]}, headers=AUTH).status_code == 200
    (status, body), = trackio_answers(data_dir, [("get_logs", ["p", "r"])])
    assert status == 200
    file_path = body["data"][0]["img"]["file_path"]
    assert (data_dir / "media" / file_path).read_bytes() == b"\x89PNG data"
