"""download(): resume, restart, verification, caching, against a server on 127.0.0.1."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from convnets.datasets.download import DownloadError, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class FileServer:
    """Serves PAYLOAD at /file.zip; can honour Range, cut a response short, count requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.cut_after: int | None = None  # bytes to send before dropping the connection
        self.ranges = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.path != "/file.zip":
                    self.send_error(404)
                    return
                start = 0
                if server.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    if start >= len(PAYLOAD):
                        self.send_response(416)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/*")
                else:
                    self.send_response(200)
                body = PAYLOAD[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(body[: server.cut_after])
                    server.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    file_server = FileServer()
    yield file_server
    file_server.close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_downloads_verifies_and_renames_into_place(tmp_path, server):
    target = download(server.url, tmp_path / "a.zip", size=len(PAYLOAD), sha256=SHA)
    assert target.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    server.cut_after = 300_000
    with pytest.raises(DownloadError, match="run again to resume"):
        download(server.url, tmp_path / "a.zip", sha256=SHA)
    partial = tmp_path / "a.zip.part"
    assert partial.stat().st_size == 300_000
    assert not (tmp_path / "a.zip").exists()

    download(server.url, tmp_path / "a.zip", sha256=SHA)
    assert server.requests[-1]["range"] == "bytes=300000-"
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD
    assert not partial.exists()


def test_a_server_without_range_support_restarts_from_zero(tmp_path, server):
    server.ranges = False
    (tmp_path / "a.zip.part").write_bytes(b"stale bytes from another file")
    download(server.url, tmp_path / "a.zip", sha256=SHA)
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD


def test_a_complete_part_file_is_finished_without_downloading_again(tmp_path, server):
    (tmp_path / "a.zip.part").write_bytes(PAYLOAD)
    download(server.url, tmp_path / "a.zip", sha256=SHA)
    assert (tmp_path / "a.zip").read_bytes() == PAYLOAD


def test_a_checksum_mismatch_is_refused_and_leaves_nothing(tmp_path, server):
    with pytest.raises(DownloadError, match="sha256 differs"):
        download(server.url, tmp_path / "a.zip", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_a_size_mismatch_is_refused_and_leaves_nothing(tmp_path, server):
    with pytest.raises(DownloadError, match="expected 12"):
        download(server.url, tmp_path / "a.zip", size=12)
    assert list(tmp_path.iterdir()) == []


def test_a_verified_copy_is_not_downloaded_again(tmp_path, server):
    download(server.url, tmp_path / "a.zip", sha256=SHA)
    count = len(server.requests)
    download(server.url, tmp_path / "a.zip", sha256=SHA)
    assert len(server.requests) == count


def test_a_wrong_existing_file_is_not_overwritten_silently(tmp_path, server):
    (tmp_path / "a.zip").write_bytes(b"something else")
    with pytest.raises(DownloadError, match="Delete it"):
        download(server.url, tmp_path / "a.zip", sha256=SHA)


def test_offline_says_what_to_do(tmp_path, server):
    url = server.url
    server.close()
    with pytest.raises(DownloadError, match="Could not reach .* Put it at X"):
        download(url, tmp_path / "a.zip", offline_hint="Put it at X")


def test_http_errors_are_reported(tmp_path, server):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url.replace("file.zip", "nothing.zip"), tmp_path / "a.zip")
