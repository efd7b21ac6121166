# convlens: an offline image for a classroom. Everything it needs is installed at build time;
# nothing is fetched at run time, so it works on a school network with no internet.
#   docker build --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) -t convlens .
#   docker run --rm -p 8000:8000 -v convlens-uploads:/data convlens
# The upload store (content-addressed PNGs) lives on the /data volume, so uploads survive a restart and
# several containers can share one store behind a load balancer (compose.yaml, profile "replicas").
FROM python:3.11-slim

# Reproducible builds: every file's time is clamped to the commit's (BuildKit: add
# --output type=image,rewrite-timestamp=true), and the .pyc files are hash-based, not time-based.
ARG SOURCE_DATE_EPOCH=0

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CONVLENS_STORE_DIR=/data/uploads \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1
# The MALLOC_ settings return freed NumPy buffers to the system (a worker's RSS stayed near 600 MB after a
# class without them, about 200 MB with them); one BLAS thread keeps a heavy request's matrix products on
# its own low-priority thread (app/admission.py).

# The app is installed (editable) into the venv from its source tree in /app, so it finds data/,
# templates/ and static/ beside its code whatever directory it is started from.
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY core ./core
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY data ./data
# Dependencies exactly as pinned in requirements.lock. Then normalise the modes whatever the build
# context had (a git archive gives 664, a umask 000 checkout 666): root owns the code and the venv, and
# nobody else may write them; everybody may read them.
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir --no-compile -c requirements.lock -e . \
    && rm -rf build \
    && python -m compileall -q --invalidation-mode unchecked-hash /app/app /app/core /opt/venv/lib \
    && chmod -R a+rX,go-w /app /opt/venv \
    && mkdir -p /data/uploads \
    && chown -R 10001:10001 /data

USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
# Readiness, not liveness: unhealthy while the store cannot be written or the data files do not load.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]
# Shell form inside JSON so that WEB_CONCURRENCY is expanded; exec makes uvicorn PID 1 (signals reach it).
# --http app.tcp:NoDelayH11 turns on TCP_NODELAY, which uvicorn skips when it binds the socket for --workers.
# --timeout-graceful-shutdown: on SIGTERM, requests in flight get 10 s, then stuck clients are dropped.
CMD ["sh", "-c", "exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --http app.tcp:NoDelayH11 --timeout-graceful-shutdown 10"]
