#!/usr/bin/env bash
# Builds alkahest into ./.venv and runs one task:
#   ./dev.sh demo    build, then run examples/demo.py
#   ./dev.sh test    build, then run the linters (rustfmt, clippy, ruff, mypy, stubtest),
#                    the Rust tests and the Python test suite
#   ./dev.sh bench   build, then run the benchmark runner (extra args go to it)
set -euo pipefail
cd "$(dirname "$0")"
task=${1:-}
case "$task" in demo|test|bench) shift ;; *) echo "usage: ./dev.sh demo|test|bench [args]" >&2; exit 2 ;; esac

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
export VIRTUAL_ENV="$PWD/$venv" PATH="$PWD/$venv/bin:$PATH"
python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
maturin develop --release --quiet

case "$task" in
    demo)  python examples/demo.py ;;
    test)  cargo fmt --all -- --check
           cargo clippy --release --workspace --all-targets --quiet -- -D warnings
           ruff check alkahest tests benchmarks examples
           mypy
           python -m mypy.stubtest alkahest._native --allowlist .ci/stubtest-allowlist
           cargo test --release --workspace --exclude alkahest-python
           python -m pytest -q "$@" ;;
    bench) python benchmarks/run.py "$@" ;;
esac
