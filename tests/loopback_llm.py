"""A small streaming LLM server for tests, on loopback only, with injected latencies.

It speaks the two protocols the benchmark Job drives: OpenAI-compatible `POST /v1/completions`
(vLLM, NIM; SSE chunks, `usage` in a last chunk when `stream_options.include_usage` is set) and
Triton's generate extension `POST /v2/models/<name>/generate_stream` (SSE `{"text_output": ...}`
responses, no usage, as the vLLM backend streams deltas). Every request's first token is sent
`ttft_s` after the request arrived and token k (k >= 1) at `ttft_s + k * itl_s` — deadlines on one
clock, so scheduling jitter does not accumulate. Tokens are the words `w0 .. w{VOCAB-1}` with a
leading space, so a whitespace word-level tokenizer (`write_tokenizer`) counts them exactly.

It records what each request asked for and what it sent (`server.log`), so a test can compare the
load generator's counts to the truth. It stops with the test (`with LoopbackLLM(...) as s:`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

VOCAB = 512


@dataclass
class Served:
    path: str
    prompt_words: int
    max_tokens: int
    sent_tokens: int
    ignore_eos: Optional[bool]
    usage_requested: bool
    first_token_s: float = 0.0
    """Server-side time from the request's arrival to the first token's write, seconds."""
    arrived_ns: int = 0
    """Wall-clock arrival (time.time_ns), to place the request in the tool's phases."""
    failed: bool = False


@dataclass
class LoopbackLLM:
    ttft_s: float = 0.120
    itl_s: float = 0.030
    model: str = "loopback/llm"
    fail_generate_every: int = 0
    """Answer every Nth generate_stream request with Triton's pre-inference error (HTTP 400 JSON); 0: never."""
    log: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "LoopbackLLM":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                elif self.path == "/metrics":
                    self._text(200, "# no engine metrics in the loopback server\n")
                elif self.path.startswith("/v2/health") or self.path == "/health":
                    self._text(200, "")
                else:
                    self._json(404, {"error": f"no route {self.path}"})

            def do_POST(self) -> None:  # noqa: N802
                arrived = time.perf_counter()
                self.arrived_ns = time.time_ns()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/v1/completions":
                    self._openai(arrived, body)
                elif self.path.startswith("/v2/models/") and self.path.endswith("/generate_stream"):
                    self._triton(arrived, body)
                else:
                    self._json(404, {"error": f"no route {self.path}"})

            # ---- protocols ----
            def _openai(self, arrived: float, body: dict) -> None:
                # /v1/completions reads max_tokens (OpenAI's completions API and vLLM's; the default is 16).
                n = int(body.get("max_tokens") or 16)
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                prompt = body.get("prompt") or ""
                prompt_words = len(str(prompt).split())
                if not body.get("stream"):
                    server._wait(arrived, n - 1)
                    self._json(200, {"id": "cmpl-1", "object": "text_completion", "model": server.model,
                                     "choices": [{"index": 0, "text": "".join(f" w{k % VOCAB}" for k in range(n)),
                                                  "finish_reason": "length"}],
                                     "usage": {"prompt_tokens": prompt_words, "completion_tokens": n,
                                               "total_tokens": prompt_words + n}})
                    server._record(Served("/v1/completions", prompt_words, n, n, body.get("ignore_eos"), True,
                                          arrived_ns=self.arrived_ns))
                    return
                self._start_sse()
                first = 0.0
                for k in range(n):
                    server._wait(arrived, k)
                    first = first or time.perf_counter() - arrived
                    self._event({"id": "cmpl-1", "object": "text_completion", "model": server.model,
                                 "choices": [{"index": 0, "text": f" w{k % VOCAB}", "logprobs": None,
                                              "finish_reason": "length" if k == n - 1 else None}]})
                if usage:
                    self._event({"id": "cmpl-1", "object": "text_completion", "model": server.model, "choices": [],
                                 "usage": {"prompt_tokens": prompt_words, "completion_tokens": n,
                                           "total_tokens": prompt_words + n}})
                self._raw(b"data: [DONE]\n\n")
                self._end()
                server._record(Served("/v1/completions", prompt_words, n, n, body.get("ignore_eos"), usage, first,
                                      self.arrived_ns))

            def _triton(self, arrived: float, body: dict) -> None:
                # The vLLM backend builds SamplingParams from the request parameters (vLLM's default is 16).
                params = body.get("parameters") or {}
                n = int(params.get("max_tokens") or 16)
                prompt_words = len(str(body.get("text_input") or "").split())
                if body.get("stream") is not True:
                    self._json(400, {"error": "send \"stream\": true (the vLLM backend's input tensor)"})
                    return
                if server._should_fail():
                    self._json(400, {"error": "injected failure"})
                    server._record(Served(self.path, prompt_words, n, 0, params.get("ignore_eos"), False,
                                          arrived_ns=self.arrived_ns, failed=True))
                    return
                self._start_sse()
                name = self.path.split("/")[3]
                first = 0.0
                for k in range(n):
                    server._wait(arrived, k)
                    first = first or time.perf_counter() - arrived
                    self._event({"model_name": name, "model_version": "1", "text_output": f" w{k % VOCAB}"})
                self._end()
                server._record(Served(self.path, prompt_words, n, n, params.get("ignore_eos"), False, first,
                                      self.arrived_ns))

            # ---- wire ----
            def _start_sse(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()

            def _event(self, obj: dict) -> None:
                self._raw(b"data: " + json.dumps(obj).encode() + b"\n\n")

            def _raw(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _end(self) -> None:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _json(self, code: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _text(self, code: int, text: str) -> None:
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.daemon_threads = True
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def _wait(self, arrived: float, k: int) -> None:
        deadline = arrived + self.ttft_s + k * self.itl_s
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def _should_fail(self) -> bool:
        with self._lock:
            self._generate_count = getattr(self, "_generate_count", 0) + 1
            return bool(self.fail_generate_every) and self._generate_count % self.fail_generate_every == 0

    def _record(self, served: Served) -> None:
        with self._lock:
            self.log.append(served)


def write_tokenizer(directory: Path, python: str) -> Path:
    """A Hugging Face fast tokenizer (tokenizer.json + tokenizer_config.json) whose vocabulary is the
    loopback server's words: whitespace-split, one token per word, for offline client-side counting.
    Built by the `tokenizers` library of `python` (the load generator's virtualenv has it)."""
    import subprocess
    import sys

    subprocess.run([python, __file__, "tokenizer", str(directory)], check=True, timeout=120)
    return directory


def _build_tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{f"w{i}": i + 1 for i in range(VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    directory.mkdir(parents=True, exist_ok=True)
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]", "model_max_length": 1000000,
        "clean_up_tokenization_spaces": False}))
    (directory / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]"}))


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "tokenizer":
        _build_tokenizer(Path(sys.argv[2]))
