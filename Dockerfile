# One image for every Charla process; compose picks the command (serve, agent NAME, migrate).
FROM python:3.11-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY charla ./charla
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY voice ./voice
COPY payments ./payments
COPY schema ./schema
RUN pip install --no-cache-dir . && useradd --system --uid 10001 charla
USER charla
ENTRYPOINT ["charla"]
CMD ["serve"]
