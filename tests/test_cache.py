"""The disk response cache: keys, values, locking across tasks, threads and processes, and no API keys."""

from __future__ import annotations

import asyncio
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
from storage.cache import DiskResponseCache, cache_key, default_cache_dir

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


def test_stale_lock_of_a_dead_process_expires(tmp_path: Path) -> None:
    cache = DiskResponseCache(tmp_path / "c", lock_expire=0.3)
    key = cache_key(req(), 0)
    cache._cache.add("lock:" + key, "token-of-a-dead-process", expire=0.3)
    client = FakeModelClient(default="Eventually.")
    got = asyncio.run(cached_complete(client, req(), cache=cache))
    assert got.text == "Eventually." and len(client.history) == 1
    cache.close()


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
    import json

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
