# One image for every Charla process; compose picks the command (serve, agent NAME, migrate, alive NAME).
# Build: docker build -t charla .   (compose.yaml builds it for you)
#
# BASE is any Debian 12 (bookworm) image: Charla runs on its python3 (3.11) in a virtualenv, so the public
# default and a base made locally with debootstrap (scripts/deploy-test.sh: --build-arg BASE=localhost/debian:
# bookworm) build the same file the same way.
ARG BASE=debian:bookworm-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore LANG=C.UTF-8 PATH=/opt/charla/venv/bin:$PATH

# espeak-ng speaks Spanish (and every language Piper has no voice for); DejaVu Sans gives flashcards their
# accents. Nothing else: FFmpeg, CTranslate2, onnxruntime and the speech models all come in wheels.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
        ca-certificates espeak-ng fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/charla/venv

WORKDIR /app
# Dependencies first, hash-checked from the lock (`make lock`; cached as a layer until the lock changes), then
# Charla itself with --no-deps, so nothing unpinned is ever fetched.
COPY requirements/prod.lock requirements/spacy-models.lock ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/prod.lock -r requirements/spacy-models.lock
COPY pyproject.toml README.md ./
COPY charla ./charla
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY voice ./voice
COPY payments ./payments
COPY schema ./schema
# No extras: `dev`/`embedded` are for tests and `local` (the offline llama demo model) is local-only.
RUN pip install --no-deps . \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/charla --no-create-home charla \
 && mkdir -p /var/lib/charla \
 && chown charla:charla /var/lib/charla

# Models are baked into the image (root-owned, read-only at run time); CHARLA_HOME is the writable volume.
ENV CHARLA_HOME=/var/lib/charla CHARLA_MODELS_DIR=/opt/charla/models CHARLA_HOST=0.0.0.0 CHARLA_PORT=8000
# Assemble the multilingual Whisper, check every bundled model file against charla/core/checksums.py, and prove
# Spanish speech works, now rather than on a learner's first voice note.
RUN charla voice prepare \
 && charla voice say "hola" --language es -o /tmp/check.ogg \
 && rm /tmp/check.ogg

USER charla
WORKDIR /var/lib/charla
VOLUME ["/var/lib/charla"]
EXPOSE 8000
ENTRYPOINT ["charla"]
CMD ["serve"]
