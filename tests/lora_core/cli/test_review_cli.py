"""`lorakit review` as a user starts it: the real command in a subprocess, its printed URL, the
token it needs, a busy port and a missing extra as one line each."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from lora_core.testing import make_sidecar_dataset


def test_the_command_serves_the_dataset_at_the_url_it_prints(tmp_path):
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, rain", "b.png": "zyla, fog,, night"})
    with subprocess.Popen([sys.executable, "-m", "lora_core", "review", str(folder), "--port", "0",
                           "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as server:
        try:
            head = server.stdout.readline() + server.stdout.readline()
            assert head.startswith(f"lorakit review: {folder} (2 captions, ")
            url = re.search(r"open (http://127\.0\.0\.1:\d+)/\?token=(\S+)", head)
            assert url, head
            state = _get_state(url.group(1), url.group(2))
            assert sorted(r["image"] for r in state["records"]) == ["a.png", "b.png"]
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url.group(1)}/api/state", timeout=5)
            assert refused.value.code == 403
            refused.value.close()
        finally:
            server.terminate()
            server.wait(30)


def _get_state(base: str, token: str) -> dict:
    """The state, once the server answers (it starts within seconds)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(f"{base}/api/state", headers={"X-Lorakit-Token": token})
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.URLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_busy_port_is_one_line(tmp_path):
    pytest.importorskip("starlette")
    folder = make_sidecar_dataset(tmp_path / "ds", {"a.png": "zyla, rain"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "lora_core", "review", str(folder), "--port", str(port),
                              "--no-browser"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().startswith(f"lorakit: error: cannot listen on 127.0.0.1:{port}") and \
        "choose another --port" in run.stderr and "Traceback" not in run.stderr


def test_without_the_extra_the_error_names_it(tmp_path):
    program = ("import sys\nsys.modules['starlette'] = None\nsys.modules['uvicorn'] = None\n"
               "from lora_core.cli import main\n"
               f"sys.argv = ['lorakit', 'review', {str(tmp_path)!r}, '--no-browser']\nmain()\n")
    run = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("lorakit: error: lorakit review needs starlette and uvicorn: "
                                         "pip install 'lorakit[review]'")
