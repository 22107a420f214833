"""The command line as a member or maintainer runs it: a real `python -m bot` process."""

import json
import shutil
import subprocess
import sys

import pytest

from bot.config import CHECKOUT, DEFAULT_CORPUS
from bot.core.answer import MAX_QUESTION_CHARS
from tests.markup import assert_within_discord_limits


def run(
    *args: str, stdin: str | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_ask_prints_a_cited_readable_answer():
    result = run("ask", "Who directed Look Back?")
    assert result.returncode == 0, result.stderr
    answer_line = next(line for line in result.stdout.splitlines() if line.startswith("A:"))
    assert "Kiyotaka Oshiyama" in answer_line
    assert "¶" in result.stdout


def test_ask_json_is_one_object_with_the_documented_fields():
    result = run("ask", "who composed the music", "--json", "-k", "2")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    data = json.loads(line)
    assert set(data) == {
        "question",
        "abstained",
        "confident",
        "spoilers",
        "withheld_spoilers",
        "passages",
        "message",
    }
    assert len(data["passages"]) <= 2
    first = data["passages"][0]
    assert set(first) == {
        "rank",
        "doc_id",
        "title",
        "source",
        "paragraph",
        "url",
        "text",
        "highlight",
        "score",
        "spoiler",
    }
    assert "Haruka Nakamura" in first["text"]
    assert_within_discord_limits(data["message"])


def test_spoilers_flag_includes_spoiler_passages():
    off = json.loads(run("ask", "does kyomoto die", "--json").stdout)
    on = json.loads(run("ask", "does kyomoto die", "--json", "--spoilers").stdout)
    assert off["withheld_spoilers"] > 0 and not any(p["spoiler"] for p in off["passages"])
    assert on["spoilers"] and any(p["spoiler"] for p in on["passages"])


def test_batch_answers_each_line_in_order_and_reports_bad_lines():
    lines = [
        json.dumps({"question": "who directed look back", "spoilers": False}),
        "not json",
        json.dumps({"question": "", "spoilers": False}),
        json.dumps({"question": "does kyomoto die", "spoilers": True}),
        json.dumps({"spoilers": True}),
    ]
    result = run("ask", "--batch", "-", "--json", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 5
    assert out[0]["question"] == "who directed look back"
    assert out[1] == {"line": 2, "error": out[1]["error"]} and "not JSON" in out[1]["error"]
    assert out[2]["line"] == 3 and "Please ask a question" in out[2]["error"]
    assert out[3]["spoilers"] is True
    assert out[4]["line"] == 5


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "Please ask a question"),
        ("   ", "Please ask a question"),
        ("x" * (MAX_QUESTION_CHARS + 1), "under 300"),
    ],
)
def test_bad_questions_exit_non_zero_with_a_message_and_no_traceback(question, message):
    result = run("ask", question)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_missing_corpus_exits_with_a_message_not_a_traceback(tmp_path):
    result = run("ask", "hi", "--corpus", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_corpus_listing_shows_spoiler_marks_for_review():
    result = run("corpus")
    assert result.returncode == 0
    rows = {row.split()[0]: row for row in result.stdout.splitlines() if "#" in row.split(" ")[0]}
    marked = [row for row in rows.values() if "spoiler section" in row or "attack" in row]
    assert marked
    credits = next(row for row in rows.values() if "ルックバック" in row)
    assert " - " in credits


def test_eval_prints_every_metric():
    result = run("eval")
    assert result.returncode == 0, result.stderr
    for metric in ("hit@1", "hit@3", "MRR", "off-topic", "spoiler leaks"):
        assert metric in result.stdout
    baseline = run("eval", "--baseline")
    assert baseline.returncode == 0 and "plain rank-bm25" in baseline.stdout


def test_bench_json_reports_both_engines_and_start_up_for_every_corpus():
    result = run("bench", "--sizes", "300", "--queries", "20", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    rows = {(r["engine"], r["chunks"]) for r in data["rows"]}
    assert {("project", 300), ("rank-bm25", 300)} <= rows
    assert len(rows) == 4  # and the shipped corpus, for both
    for row in data["rows"]:
        assert row["build_s"] >= 0 and row["p50_ms"] <= row["p99_ms"]
    assert data["machine"]["cpus"] >= 1
    shipped, synthetic = data["startup"]
    assert (shipped["corpus"], shipped["chunks"]) == ("shipped", 32)
    assert synthetic["corpus"] == "synthetic" and synthetic["chunks"] >= 300
    assert all(s["cached_s"] > 0 and s["cache_mb"] > 0 for s in data["startup"])
    search = {(r["engine"], r["chunks"]): r for r in data["search"]}
    assert {("lexical", 32), ("hybrid", 32), ("hybrid", 300)} == set(search)
    assert search[("hybrid", 300)]["vectors_mb"] == 300 * 384 * 4 / 2**20
    assert all(r["p50_ms"] <= r["p99_ms"] for r in search.values())


@pytest.mark.skipif(not shutil.which("callgrind_control"), reason="needs valgrind")
def test_bench_counts_instructions_per_search_under_callgrind():
    result = run("bench", "--sizes", "", "--lexical", "--instructions", "--json")
    assert result.returncode == 0, result.stderr
    counted = json.loads(result.stdout)["instructions_per_search"]
    assert set(counted) == {"lexical"}  # a search costs ~0.9 M; start-up, counted, 1000x that
    assert 100_000 < counted["lexical"] < 10_000_000


def test_an_installed_copy_keeps_its_corpus_and_cache_in_the_folder_it_runs_in(tmp_path):
    """As after a non-editable `pip install .`: the package alone, with no checkout around it."""
    site = tmp_path / "site-packages"
    shutil.copytree(CHECKOUT / "bot", site / "bot")
    installed = sorted(site.rglob("*"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    ask = [sys.executable, "-m", "bot", "ask", "who composed the music"]

    empty = tmp_path / "empty"
    empty.mkdir()
    missing = subprocess.run(ask, cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert str(empty / "corpus") in missing.stderr and "CORPUS_DIR" in missing.stderr

    home = tmp_path / "home"
    shutil.copytree(DEFAULT_CORPUS, home / "corpus")
    found = subprocess.run(ask, cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert "Haruka Nakamura" in found.stdout
    assert list((home / ".cache").glob("index-*.npz"))
    assert sorted(site.rglob("*")) == installed  # nothing written into the package


def test_a_manifest_entry_pointing_at_the_env_file_cannot_post_the_token(tmp_path):
    (tmp_path / ".env").write_text("DISCORD_TOKEN=not.a.real.token\n")
    corpus = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS, corpus)
    with (corpus / "manifest.toml").open("a") as f:
        f.write('\n[[documents]]\nid = "env"\nfile = "../.env"\ntitle = "t"\n')
        f.write('source = "s"\nkind = "review"\n')
    result = run("ask", "--corpus", str(corpus), "DISCORD_TOKEN", "--json")
    assert result.returncode == 2
    assert "not.a.real.token" not in result.stdout + result.stderr
    [line] = result.stderr.splitlines()
    assert "document 'env'" in line and "outside the corpus folder" in line


def test_hostile_batch_lines_each_get_an_error_in_place_and_the_rest_go_on(tmp_path):
    good = json.dumps({"question": "who composed the music"}).encode()
    lines = [
        good,
        b'{"question": "caf\xe9"}',  # not UTF-8
        b"[" * 30_000 + b"]" * 30_000,  # deeper than the parser's recursion limit
        b'{"question": "\\ud800 who directed it"}',  # a lone surrogate
        b'{"question": "' + b"x" * 200_000 + b'"}',  # over the line limit
        good,
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b"\n".join(lines) + b"\n")
    result = run("ask", "--batch", str(batch), "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o.get("line") for o in out] == [None, 2, 3, None, 5, None]
    assert "UTF-8" in out[1]["error"] and "deeply" in out[2]["error"]
    assert "Oshiyama" in json.dumps(out[3]) and "bytes" in out[4]["error"]


def test_a_batch_is_answered_as_it_streams_in():
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", "--batch", "-", "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdin and process.stdout
    process.stdin.write(json.dumps({"question": "who directed it"}) + "\n")
    process.stdin.flush()
    first = json.loads(process.stdout.readline())  # before the input has ended
    assert "Oshiyama" in json.dumps(first)
    process.stdin.close()
    assert process.wait(30) == 0


def test_a_300_mb_line_is_refused_without_being_held(tmp_path):
    batch = tmp_path / "big.jsonl"
    with batch.open("wb") as f:
        f.write(b'{"question": "')
        for _ in range(300):
            f.write(b"x" * 2**20)
        f.write(b'"}\n' + json.dumps({"question": "who directed it"}).encode() + b"\n")
    command = ["ask", "--batch", str(batch), "--json"]
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "bot", *command],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["line"] == 1 and "Oshiyama" in json.dumps(out[1])
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    assert peak_kb < 250_000  # the line alone is 300 MB


def test_terminal_escapes_in_corpus_text_are_not_printed(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(DEFAULT_CORPUS, corpus)
    with (corpus / "overview-hen.txt").open("a", encoding="utf-8") as f:
        f.write("\n\nThe zebrafish composer\x1b]0;pwned\x07 wrote\x1b[2J a score.\n")
    result = run("ask", "--corpus", str(corpus), "zebrafish composer")
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "zebrafish composer wrote a score" in result.stdout
    listing = run("corpus", "--corpus", str(corpus))
    assert "\x1b" not in listing.stdout
