# The service image. Build: `docker build -t ccbot .` or `az acr build` (README, "Deploy to Azure").
# Runs as an unprivileged user, listens on $PORT (3978) on all interfaces, answers /healthz.

# Wheels are built where a compiler is at hand, should a pinned package ever come as source
# only, and installed offline into a virtual environment that the final stage copies: the
# final image has no compiler and no build leftovers. Both stages are the same Python 3.11 on
# the same Debian release, so the environment runs unchanged.
FROM python:3.11-bookworm AS builder
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels -r requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
        --find-links=/wheels -r requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3978
RUN groupadd --system --gid 10001 ccbot \
    && useradd --system --uid 10001 --gid ccbot --no-create-home --shell /usr/sbin/nologin ccbot
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Runtime code only; the files stay root-owned, so the service cannot rewrite itself.
COPY app.py ./
COPY bot/ bot/
COPY dialogs/ dialogs/
COPY cards/ cards/
COPY credits/ credits/
COPY storage/ storage/
COPY graph/ graph/
COPY payments/ payments/
COPY locales/ locales/
# The operator's usage import (`python -m scripts.usage`) and nothing else of the tools.
COPY scripts/__init__.py scripts/usage.py scripts/
RUN python -m compileall -q /app
USER 10001:10001
EXPOSE 3978
# slim has no curl: ask the service itself with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3978'), timeout=4)"]
CMD ["python", "app.py"]
