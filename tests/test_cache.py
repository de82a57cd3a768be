"""The disk response cache: keys, values, locking across tasks, threads and processes, and no API keys."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from fakes import FakeModelClient
from fusion.client import Completion, CompletionRequest
from fusion.generate import cached_complete, generate_candidates
from fusion.types import ModelSpec, Prompt, SamplingSettings
from fusion.progress import CandidateProgress, CountBar
from storage import cache as cache_module
from storage.cache import DiskResponseCache, LockWait, cache_key, default_cache_dir
from kill_support import sigkill_when

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Name three rivers in Europe"}]


def req(**kw) -> CompletionRequest:
    kw.setdefault("temperature", 0.8)
    return CompletionRequest.from_messages(kw.pop("model", "openai/m"), kw.pop("messages", MESSAGES), **kw)


def test_cache_key_covers_what_identifies_an_answer() -> None:
    base = cache_key(req(), 0)
    assert len(base) == 64 and int(base, 16) >= 0
    assert cache_key(req(), 0) == base
    different = [
        cache_key(req(), 1),
        cache_key(req(model="openai/n"), 0),
        cache_key(req(api_base="http://127.0.0.1:1/v1"), 0),
        cache_key(req(messages=[{"role": "user", "content": "Name four rivers in Europe"}]), 0),
        cache_key(req(messages=[{"role": "system", "content": "Be brief."}, *MESSAGES]), 0),
        cache_key(req(temperature=0.2), 0),
        cache_key(req(top_p=0.9), 0),
        cache_key(req(max_tokens=10), 0),
        cache_key(req(seed=1), 0),
    ]
    assert base not in different and len(set(different)) == len(different)
    # Transport settings do not change the answer.
    assert cache_key(req(timeout=3.0, num_retries=7), 0) == base


def test_roundtrip_and_bad_entries(response_cache: DiskResponseCache) -> None:
    key = cache_key(req(), 0)
    assert response_cache.get(key) is None
    response_cache.set(key, Completion("The Danube, the Rhine, the Loire.", "openai/m", 1.25, 12, 9))
    got = response_cache.get(key)
    assert got == Completion("The Danube, the Rhine, the Loire.", "openai/m", 1.25, 12, 9, cached=True)
    assert key in response_cache and len(response_cache) == 1
    response_cache._cache.set("junk", {"v": 999, "text": "?"})  # an entry from an incompatible version
    assert response_cache.get("junk") is None
    with pytest.raises(ValueError):
        response_cache.set("lock:x", got)
    assert response_cache.delete(key) and response_cache.get(key) is None


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FUSION_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("FUSION_CACHE_DIR")
    assert default_cache_dir() == ROOT / ".cache" / "responses"


def test_lock_serialises_tasks_on_one_key(response_cache: DiskResponseCache) -> None:
    order: list[str] = []

    async def holder(name: str, key: str, gate: asyncio.Event | None) -> None:
        async with response_cache.lock(key):
            order.append(f"{name} in")
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
            order.append(f"{name} out")

    async def main() -> None:
        gate = asyncio.Event()
        first = asyncio.create_task(holder("a", "k", gate))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(holder("b", "k", None))
        other = asyncio.create_task(holder("c", "other-key", None))
        await other  # a different key is not blocked
        await asyncio.sleep(0.05)
        assert order == ["a in", "c in", "c out"]
        gate.set()
        await asyncio.gather(first, second)

    asyncio.run(main())
    assert order[3:] == ["a out", "b in", "b out"]
    assert response_cache._local == {}  # per-key locks are dropped once unused
    assert len(response_cache) == 0  # lock entries are gone and never counted


def test_lock_across_threads_with_their_own_event_loops(response_cache: DiskResponseCache) -> None:
    # Streamlit: one shared cache object, each session thread running its own asyncio.run.
    client = FakeModelClient(default="Shared answer.", delay=0.2)
    request = req()
    results: list[Completion] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(asyncio.run(cached_complete(client, request, cache=response_cache)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(client.history) == 1
    assert sorted(r.cached for r in results) == [False, True, True, True]


def test_separate_cache_objects_share_the_lock(tmp_path: Path) -> None:
    # Two instances on one directory behave like two processes: only the on-disk lock is shared.
    one, two = DiskResponseCache(tmp_path / "c"), DiskResponseCache(tmp_path / "c")
    client = FakeModelClient(default="Once.", delay=0.2)

    async def main() -> list[Completion]:
        return await asyncio.gather(cached_complete(client, req(), cache=one),
                                    cached_complete(client, req(), cache=two))

    out = asyncio.run(main())
    assert len(client.history) == 1 and {c.text for c in out} == {"Once."}
    one.close()
    two.close()


def test_bare_token_of_an_earlier_version_is_not_waited_for(tmp_path: Path) -> None:
    # Earlier versions stored a bare token for 900 s; its holder cannot be checked, so it does not block.
    cache = DiskResponseCache(tmp_path / "c", lock_wait_max=600)
    key = cache_key(req(), 0)
    cache._cache.add("lock:" + key, "token-of-a-dead-process", expire=900)
    client = FakeModelClient(default="At once.")
    started = time.monotonic()
    got = asyncio.run(cached_complete(client, req(), cache=cache))
    assert got.text == "At once." and len(client.history) == 1
    assert time.monotonic() - started < 30
    assert not any(str(k).startswith("lock:") for k in cache._cache.iterkeys())
    cache.close()


# A process that takes the cache lock on one key, says so, and holds it until it is killed or HOLD_S pass.
HOLDER = textwrap.dedent(
    """
    import asyncio, sys, time
    sys.path.insert(0, sys.argv[1])
    from storage.cache import DiskResponseCache

    async def main():
        cache = DiskResponseCache(sys.argv[2], lock_expire=float(sys.argv[5]))
        async with cache.lock(sys.argv[3]):
            print("HELD", flush=True)
            await asyncio.sleep(float(sys.argv[4]))
        print("RELEASED", flush=True)

    asyncio.run(main())
    """
)


def start_holder(directory: Path, key: str, hold_s: float, lease_s: float = 900.0) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(ROOT), str(directory), key, str(hold_s), str(lease_s)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "HELD", proc.stderr.read() if proc.stderr else line
    return proc


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_lock_of_a_killed_process_is_taken_over_at_once(tmp_path: Path, how: signal.Signals, reap: bool) -> None:
    key = cache_key(req(), 0)
    holder = start_holder(tmp_path / "c", key, hold_s=600)
    try:
        holder.send_signal(how)
        if reap:
            holder.wait(timeout=10)
        else:
            # Dead but not yet waited for: the pid still exists, as a zombie.
            deadline = time.monotonic() + 10
            while Path(f"/proc/{holder.pid}/stat").read_text().split(") ")[1][0] != "Z":
                assert time.monotonic() < deadline
                time.sleep(0.02)
        events: list[LockWait] = []
        # The holder's lease is 900 s and this waiter would wait up to 600 s for a live one.
        cache = DiskResponseCache(tmp_path / "c", lock_wait_max=600, on_wait=events.append)
        assert cache._cache.get("lock:" + key)["pid"] == holder.pid  # the lock is really there
        client = FakeModelClient(default="Computed again.")
        started = time.monotonic()
        got = asyncio.run(cached_complete(client, req(), cache=cache))
        assert time.monotonic() - started < 30  # generous; the old behaviour waited 900 s
        assert got.text == "Computed again." and len(client.history) == 1
        assert [(e.kind, e.holder_pid) for e in events] == [("stale", holder.pid)]
        assert cache._cache.get("lock:" + key) is None  # released after the call
        cache.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_live_holder_is_waited_for_and_the_wait_is_reported(tmp_path: Path) -> None:
    key = cache_key(req(), 0)
    holder = start_holder(tmp_path / "c", key, hold_s=1.5)
    try:
        events: list[LockWait] = []
        cache = DiskResponseCache(tmp_path / "c", wait_notice=0.1, on_wait=events.append)

        async def main() -> None:
            async with cache.lock(key):
                pass

        asyncio.run(main())
        assert holder.stdout is not None and holder.stdout.readline().strip() == "RELEASED"
        kinds = [e.kind for e in events]
        assert kinds[0] == "waiting" and kinds[-1] == "acquired" and set(kinds) == {"waiting", "acquired"}
        assert {e.holder_pid for e in events} == {holder.pid}
        assert events[-1].waited_s >= events[0].waited_s
        cache.close()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_holder_renews_its_short_lease_while_it_works(tmp_path: Path) -> None:
    # Same process, two cache objects: the pid check says "alive", so only the lease could free the lock.
    # A lease of 0.3 s that were not renewed would let the second in long before the first is done.
    one = DiskResponseCache(tmp_path / "c", lock_expire=0.3)
    two = DiskResponseCache(tmp_path / "c", lock_expire=0.3)
    order: list[str] = []

    async def hold(cache: DiskResponseCache, name: str, seconds: float) -> None:
        async with cache.lock("k"):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)
            order.append(f"{name} out")

    async def main() -> None:
        first = asyncio.create_task(hold(one, "a", 1.2))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, hold(two, "b", 0))

    asyncio.run(main())
    assert order == ["a in", "a out", "b in", "b out"]
    one.close()
    two.close()


def test_a_reused_pid_does_not_keep_a_lock(tmp_path: Path) -> None:
    # The recorded pid is alive (our parent) but started at another time than the holder did.
    cache = DiskResponseCache(tmp_path / "c", lock_wait_max=600)
    me = cache_module._holder_identity()
    cache._cache.add("lock:k", {**me, "pid": os.getppid(), "started": "1", "token": "t"}, expire=900)

    async def main() -> None:
        async with cache.lock("k"):
            pass

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 30
    cache.close()


def test_a_holder_on_another_host_is_waited_out_by_its_lease(tmp_path: Path) -> None:
    # Its pid means nothing here: no take-over, the lease decides.
    events: list[LockWait] = []
    cache = DiskResponseCache(tmp_path / "c", wait_notice=0.05, on_wait=events.append)
    cache._cache.add("lock:k", {"host": "elsewhere/boot", "pid": 1, "started": "5", "token": "t"}, expire=0.6)

    async def main() -> None:
        async with cache.lock("k"):
            pass

    asyncio.run(main())
    kinds = [e.kind for e in events]
    assert "stale" not in kinds and kinds[0] == "waiting" and kinds[-1] == "acquired"
    cache.close()


def test_without_a_hook_waits_and_take_overs_go_to_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DiskResponseCache(tmp_path / "c", wait_notice=0.05)
    cache._cache.add("lock:a", {"host": "elsewhere/boot", "pid": 77, "token": "t"}, expire=0.4)
    cache._cache.add("lock:b", "bare-token", expire=900)

    async def main() -> None:
        for key in ("a", "b"):
            async with cache.lock(key):
                pass

    with caplog.at_level(logging.WARNING, logger="storage.cache"):
        asyncio.run(main())
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting for process 77" in m for m in messages)
    assert any("took over a response-cache lock" in m for m in messages)
    cache.close()


def test_a_live_holder_is_given_up_on_after_the_maximum_wait(tmp_path: Path) -> None:
    events: list[LockWait] = []
    cache = DiskResponseCache(tmp_path / "c", lock_wait_max=0.3, wait_notice=0.05, on_wait=events.append)
    client = FakeModelClient(default="Anyway.")
    request = req()
    key = cache_key(request, 0)
    cache._cache.add("lock:" + key, {"host": "elsewhere/boot", "pid": 9, "token": "t"}, expire=900)
    got = asyncio.run(cached_complete(client, request, cache=cache))
    assert got.text == "Anyway." and events[-1].kind == "gave_up"
    assert cache.get(key) is not None  # stored all the same
    assert cache._cache.get("lock:" + key)["pid"] == 9  # and the other holder's entry left alone
    cache.close()


def test_count_bar_shows_lock_waits() -> None:
    stream = io.StringIO()
    bar = CountBar(3, "batch", stream=stream)
    bar.advance(skipped=True)
    bar.lock_wait(LockWait("waiting", "k1", 4242, 0.6))
    assert "waiting on 1 call of pid 4242 1 s" in stream.getvalue().splitlines()[-1]
    bar.lock_wait(LockWait("waiting", "k2", 4242, 0.5))
    bar.lock_wait(LockWait("waiting", "k1", 4242, 7.2))
    bar.draw(final=False, force=True)
    assert "waiting on 2 calls of pid 4242 7 s" in stream.getvalue().splitlines()[-1]
    bar.lock_wait(LockWait("acquired", "k1", 4242, 8.0))
    bar.lock_wait(LockWait("acquired", "k2", 4242, 8.0))
    bar.lock_wait(LockWait("stale", "k3", 17, 0.0))
    last = stream.getvalue().splitlines()[-1]
    assert "waiting" not in last and "took over 1 stale lock" in last
    bar.advance()
    bar.advance()
    assert stream.getvalue().splitlines()[-1].startswith("batch [") and bar._finished


def test_candidate_progress_prints_lock_waits() -> None:
    stream = io.StringIO()
    progress = CandidateProgress(2, stream=stream)
    for waited in (0.5, 1.5, 2.5, 11.0):
        progress.lock_wait(LockWait("waiting", "k", 31, waited))
    progress.lock_wait(LockWait("acquired", "k", 31, 12.0))
    progress.lock_wait(LockWait("stale", "j", 32, 0.0))
    assert stream.getvalue().splitlines() == [
        "  waiting for process 31, which is computing the same request (0 s)",
        "  waiting for process 31, which is computing the same request (11 s)",
        "  done waiting (12 s)",
        "  took over a lock left by process 32, which is no longer running",
    ]
    quiet = io.StringIO()
    CandidateProgress(2, stream=quiet, quiet=True).lock_wait(LockWait("stale", "j", 32, 0.0))
    assert quiet.getvalue() == ""


@pytest.mark.server
def test_concurrent_misses_in_separate_processes_call_once(openai_server, tmp_path: Path) -> None:
    """Three processes ask for the same answer at the same moment; the model is called once."""
    script = textwrap.dedent(
        """
        import asyncio, json, sys, time, urllib.request
        sys.path.insert(0, sys.argv[1])
        from fusion.client import Completion, CompletionRequest
        from fusion.generate import cached_complete
        from storage.cache import DiskResponseCache

        class UrllibClient:  # stdlib HTTP, so each process starts fast (no litellm import)
            async def complete(self, request, *, api_key=None, on_token=None):
                def post():
                    body = json.dumps({"model": "slow@0.6", "messages": request.message_dicts()}).encode()
                    r = urllib.request.Request(request.api_base + "/chat/completions", body,
                                               {"Content-Type": "application/json"})
                    return json.load(urllib.request.urlopen(r, timeout=10))
                data = await asyncio.to_thread(post)
                return Completion(data["choices"][0]["message"]["content"], request.model, 0.6)

        cache = DiskResponseCache(sys.argv[2])
        request = CompletionRequest.from_messages("openai/slow@0.6", [{"role": "user", "content": "rivers"}],
                                                  api_base=sys.argv[3])
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # start together
        done = asyncio.run(cached_complete(UrllibClient(), request, cache=cache))
        print(json.dumps({"text": done.text, "cached": done.cached}))
        """
    )
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(tmp_path / "shared"), openai_server.url,
                          str(start_at)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert openai_server.count() == 1
    assert len({r["text"] for r in results}) == 1
    assert sorted(r["cached"] for r in results) == [False, True, True]


@pytest.mark.server
def test_api_key_never_reaches_the_cache_files(openai_server, fast_client, tmp_path: Path) -> None:
    secret = "sk-cachetest-DO-NOT-STORE-4242"
    cache = DiskResponseCache(tmp_path / "c")
    pool = [ModelSpec("openai/ok", samples=2, api_base=openai_server.url, api_key=secret)]
    out = asyncio.run(generate_candidates(Prompt("Describe the water cycle"), pool,
                                          SamplingSettings(seed=3, timeout=5.0, num_retries=0),
                                          client=fast_client, cache=cache))
    assert all(c.ok for c in out)
    assert openai_server.requests[0]["headers"]["authorization"] == f"Bearer {secret}"  # it was used
    cache.close()
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert out[0].text.encode() in blobs  # the scan does see what is stored
    assert secret.encode() not in blobs
    assert b"DO-NOT-STORE" not in blobs


@pytest.mark.server
def test_batch_killed_while_holding_locks_resumes_without_waiting(openai_server, tmp_path: Path) -> None:
    """The reported defect: `fusion batch` SIGKILLed mid-call left `lock:` entries, and the rerun sat for
    900 s until they expired. Now the rerun takes them over at once and sends nothing for finished prompts."""
    prompts = [f"Explain topic number {i} to a student" for i in range(4)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"t{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)),
                   encoding="utf-8")
    out = tmp_path / "runs.jsonl"
    cache_dir = tmp_path / "responses"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("DATABASE_URL", None)
    env.update({"LITELLM_OFFLINE_MODE": "true", "PYTHONPATH": str(ROOT), "FUSION_CACHE_DIR": str(cache_dir),
                "FUSION_DB_PATH": str(tmp_path / "fusion.db")})
    args = [sys.executable, "-m", "fusion", "batch", str(src), "-o", str(out), "--api-base", openai_server.url,
            "--model", "openai/slow@0.6", "--fusor-model", "openai/fusor", "-n", "2", "--concurrency", "1",
            "--retries", "0"]

    def lock_entries() -> list[str]:
        with DiskResponseCache(cache_dir) as peek:
            return [str(k) for k in peek._cache.iterkeys() if str(k).startswith("lock:")]

    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it once one prompt is finished and a call of the next one holds its lock.
    sigkill_when(
        proc, lambda: out.exists() and out.read_bytes().count(b"\n") >= 1 and cache_dir.exists() and bool(lock_entries()),
        within=90,
    )
    stale = lock_entries()
    assert stale, "no lock was held at the kill: the test would prove nothing"
    finished = [json.loads(line)["input_id"] for line in out.read_text(encoding="utf-8").splitlines()
                if line.endswith("}")]
    assert 1 <= len(finished) < len(prompts)
    openai_server.reset()

    started = time.monotonic()
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 120  # generous; stale locks used to hold it 900 s
    assert "stale lock" in again.stderr  # the batch's progress line says what happened (CountBar.lock_wait)
    done = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["input_id"] for r in done) == [f"t{i}" for i in range(4)]
    resent = {[m["content"] for m in r["body"]["messages"] if m["role"] == "user"][-1]
              for r in openai_server.requests if r["model"] == "slow@0.6"}
    assert resent and resent.isdisjoint(prompts[int(i[1:])] for i in finished)
    assert not any(k in lock_entries() for k in stale)
