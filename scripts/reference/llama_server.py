#!/usr/bin/env python3
"""llama.cpp's OpenAI-compatible server (llama_cpp.server, llama-cpp-python 0.3.36 [server]) with
llama.cpp's extra buffer types off, the peer of scripts/bench-serve.

    $ATTNAX_CACHE/venv-llamacpp/bin/python scripts/reference/llama_server.py --model FILE \\
        --n_threads 2 --port P [any other llama_cpp.server flag]

The flags are llama_cpp.server's own (`python -m llama_cpp.server --help`). What this adds: every
model the server loads is opened with use_extra_bufts = false (llamalib._no_extra_buffer_types), as
the reference scripts open quantized files. On hosts with AMX a llama.cpp built with it dies with
SIGILL the first time it computes with a quantized GGUF, in the path that repacks weights into AMX
buffers, and llama_cpp.server's settings have no field for it. make-llamacpp-venv builds with AMX
off as well; this is the second guard, and it keeps llama.cpp's CPU weight repacking off, so the
peer computes with the weights as the file holds them (the same setting as llama_bench.py).
The venv is made by scripts/reference/make-llamacpp-venv (requirements-llamacpp.txt has the
server extras).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llamalib  # noqa: E402


def main() -> None:
  from llama_cpp.server.__main__ import main as server_main

  sys.argv[0] = "llama_server.py"
  # The server loads its model in create_app and may load another on a request naming one: the
  # default parameters stay patched for the process's life.
  with llamalib._no_extra_buffer_types():
    server_main()


if __name__ == "__main__":
  main()
