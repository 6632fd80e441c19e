"""The `openai` captioner against a fake OpenAI-compatible server on 127.0.0.1: the request it sends,
retries, timeouts, broken answers and servers, resuming, and `--vote join`."""

from __future__ import annotations

import base64
import csv
import io
import socket

import pytest
from click.testing import CliRunner
from lorakit_openai import OpenAICaptioner
from PIL import Image

from lora_core.captioning import CaptionContext, clean_answer, default_prompt, join_captions
from lora_core.cli import cli
from lora_core.errors import PluginError
from lora_core.protocols import ImageItem
from lora_core.testing.openai_server import FakeOpenAIServer


def _images(folder, colours=("red", "green", "blue"), size=(1600, 900)):
    folder.mkdir(parents=True, exist_ok=True)
    rgb = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
    for index, colour in enumerate(colours):
        Image.new("RGB", size, rgb[colour]).save(folder / f"{index:02d}_{colour}.png")
    return folder


def _items(folder):
    return [ImageItem(p.name, p, folder) for p in sorted(folder.glob("*.png"))]


def _captioner(server, **options):
    options.setdefault("backoff", 0.01)
    return OpenAICaptioner(base_url=server.url, api_key="sk-test", **options)


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_a_caption_is_asked_with_a_resized_jpeg_and_comes_back_cleaned(tmp_path):
    folder = _images(tmp_path / "imgs")
    with FakeOpenAIServer(models=["tiny-vl"]) as server:
        captioner = _captioner(server, max_side=512)
        captions = captioner.caption(_items(folder))
    assert captions == ["a red picture, 512x288.", "a green picture, 512x288.", "a blue picture, 512x288."]
    body = server.requests[0]
    assert body["model"] == "tiny-vl"  # the server's only model, asked at /models
    assert body["temperature"] == 0 and body["max_tokens"] == 300
    text, image = body["messages"][0]["content"]
    assert text == {"type": "text", "text": default_prompt(CaptionContext())}
    assert image["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_the_environment_names_the_server_and_the_key_as_the_openai_client_reads_them(tmp_path, monkeypatch):
    folder = _images(tmp_path / "imgs", ["red"])
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        assert OpenAICaptioner(model="tiny-vl").caption(_items(folder)) == ["a red picture, 1024x576."]
    assert server.headers[0]["Authorization"] == "Bearer sk-env"


def test_the_prompt_carries_the_trigger_the_style_and_the_form(tmp_path):
    context = CaptionContext(trigger="zyla", style="ink-wash", form="tags")
    prompt = default_prompt(context)
    assert "booru-style tags" in prompt and '"zyla"' in prompt and '"ink-wash"' in prompt
    assert "one sentence" in default_prompt(CaptionContext(), "sentence")
    with pytest.raises(PluginError, match="form='haiku'"):
        default_prompt(context, "haiku")
    with FakeOpenAIServer() as server:
        _captioner(server, context=context).caption(_items(_images(tmp_path / "imgs", ["red"])), prompt=None)
        _captioner(server).caption(_items(tmp_path / "imgs"), prompt="Tag this.")
    assert server.requests[0]["messages"][0]["content"][0]["text"] == prompt
    assert server.requests[1]["messages"][0]["content"][0]["text"] == "Tag this."  # --prompt wins


@pytest.mark.parametrize("steps", [["429", "ok"], ["500", "503", "ok"], ["not-json", "ok"], ["wrong-shape", "ok"],
                                   ["close-mid-answer", "ok"], ["sleep1.5", "ok"]])
def test_what_another_try_may_fix_is_retried(tmp_path, steps):
    with FakeOpenAIServer() as server:
        server.script(steps)
        captions = _captioner(server, timeout=0.5).caption(_items(_images(tmp_path / "imgs", ["red"])))
    assert captions == ["a red picture, 1024x576."]
    assert len(server.requests) == len(steps)


@pytest.mark.parametrize(("steps", "message"), [
    (["500"] * 3,
     r"captioning 00_red.png: gave up after 3 tries; the last: 500 Internal Server Error \(scripted 500\)"),
    (["sleep1.5"] * 3, r"gave up after 3 tries; the last: no answer within 0.5 s \(-O timeout=...\)"),
    (["close-mid-answer"] * 3, r"gave up after 3 tries; the last: the connection dropped"),
    (["not-json"] * 3, r"the last: the answer is not JSON \(b'<html>502 Bad Gateway</html>'\)"),
    (["401"], r"answered 401 Unauthorized \(scripted 401\): set OPENAI_API_KEY or -O openai.api_key=..."),
    (["404"], r"answered 404 Not Found \(scripted 404\): is http://127.0.0.1:\d+/v1 the server's /v1 URL"),
])
def test_what_it_cannot_fix_is_one_line_naming_the_option(tmp_path, steps, message):
    with FakeOpenAIServer() as server:
        server.script(steps)
        captioner = _captioner(server, timeout=0.5, retries=2)
        with pytest.raises(PluginError, match=message) as raised:
            captioner.caption(_items(_images(tmp_path / "imgs", ["red"])))
    assert "\n" not in str(raised.value)


def test_an_unreachable_server_fails_at_once_naming_the_option():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PluginError, match=rf"cannot reach http://127.0.0.1:{port}/v1 .*-O openai.base_url="):
        OpenAICaptioner(base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(PluginError, match="not an http"):
        OpenAICaptioner(base_url="file:///etc/passwd", model="x")


def test_a_server_with_several_models_asks_which(tmp_path):
    with FakeOpenAIServer(models=["a-vl", "b-vl"]) as server:
        with pytest.raises(PluginError, match=r"serves 2 models \(a-vl, b-vl\): name one with --model NAME"):
            _captioner(server)
        assert _captioner(server, model="b-vl").model == "b-vl"


def test_bad_option_values_are_one_line(tmp_path):
    with FakeOpenAIServer() as server:
        for option, value in (("concurrency", 0), ("max_side", "big"), ("timeout", -1), ("jpeg_quality", 100)):
            with pytest.raises(PluginError, match=f"-O {option}="):
                _captioner(server, **{option: value})


def test_requests_run_concurrently_up_to_the_limit(tmp_path):
    folder = _images(tmp_path / "imgs", ["red", "green", "blue"] * 4)
    with FakeOpenAIServer(latency=0.2) as server:
        captions = _captioner(server, concurrency=4).caption(_items(folder))
    assert len(captions) == 12 and all(c.startswith("a ") for c in captions)
    assert server.peak_active == 4


def test_an_empty_answer_leaves_the_image_uncaptioned_with_a_warning(tmp_path, capsys):
    with FakeOpenAIServer() as server:
        server.script(["empty"])
        assert _captioner(server).caption(_items(_images(tmp_path / "imgs", ["red"]))) == [""]
    assert "the model gave no caption for 00_red.png: left uncaptioned" in capsys.readouterr().err


def test_answers_are_cleaned_of_chat_wrappers_only():
    assert clean_answer("Sure! Here is a caption for the image:\n\nA red fox in snow.") == "A red fox in snow."
    assert clean_answer("<think>the user wants tags</think>\n1girl, solo") == "1girl, solo"
    assert clean_answer('"A fox." Let me know if you want changes!') == "A fox."
    assert clean_answer("```\n1girl, red hair\n```") == "1girl, red hair"
    assert clean_answer("**Caption:** a cat on a mat") == "a cat on a mat"
    assert clean_answer("<think>cut off before any caption") == ""
    for kept in ('A painting of "The Scream" in ink', "Here is the man's portrait in oil", "caption: none"[:0]):
        assert clean_answer(kept) == kept


def test_join_puts_every_draft_in_one_caption():
    assert join_captions(["1girl, red hair", "A woman stands in the rain."]) == \
        "1girl, red hair, A woman stands in the rain."
    assert join_captions(["A woman.", "1girl", "1girl", ""]) == "A woman. 1girl"


def _csv_rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_lorakit_caption_with_the_openai_captioner_resumes_after_a_failure(tmp_path, monkeypatch):
    folder = _images(tmp_path / "imgs", ["red", "green", "blue"] * 30)  # 90 images: two written chunks
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        server.script(["ok"] * 70 + ["500"] * 10)  # the second chunk fails for good
        options = ["caption", str(folder), "--captioner", "openai", "-O", "openai.retries=1",
                   "-O", "backoff=0", "-O", "concurrency=1"]
        first = CliRunner().invoke(cli, options)
        assert first.exit_code == 2, first.output
        assert first.output.count("\n") == 1 and "gave up after 2 tries" in first.output
        assert len(_csv_rows(folder / "metadata.csv")) == 64  # the first chunk, written whole
        done = len(server.requests)
        server.script([])  # the server is back
        second = CliRunner().invoke(cli, [*options, "--resume"])
        assert second.exit_code in (0, 1), second.output
    rows = _csv_rows(folder / "metadata.csv")
    assert len(rows) == 90 and len(server.requests) - done == 26
    assert rows[0] == {"file_name": "00_red.png", "text": "a red picture, 1024x576."}


def test_vote_join_writes_a_taggers_tags_then_a_sentence(tmp_path, monkeypatch):
    folder = _images(tmp_path / "imgs", ["red", "blue"])
    (folder / "old.csv").write_text('file_name,text\n00_red.png,"red, flat colour"\n01_blue.png,"blue, flat colour"\n')
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        run = CliRunner().invoke(cli, ["caption", str(folder), "--captioner", "csv",
                                       "--model", f"csv={folder / 'old.csv'}", "--captioner", "openai",
                                       "--vote", "join", "--keep-candidates"])
    assert run.exit_code in (0, 1), run.output
    rows = _csv_rows(folder / "metadata.csv")
    assert [r["text"] for r in rows] == ["red, flat colour, a red picture, 1024x576.",
                                         "blue, flat colour, a blue picture, 1024x576."]
    assert '"chosen": "csv+openai"' in rows[0]["candidates"]


def test_the_image_sent_is_the_picture_not_a_file_path(tmp_path):
    folder = _images(tmp_path / "imgs", ["green"], size=(300, 200))
    with FakeOpenAIServer() as server:
        _captioner(server).caption(_items(folder))
    url = server.requests[0]["messages"][0]["content"][1]["image_url"]["url"]
    with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as sent:
        assert sent.format == "JPEG" and sent.size == (300, 200)  # small images are not enlarged
