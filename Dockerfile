# convlens: an offline image for a classroom. Everything it needs is installed at build time;
# nothing is fetched at run time, so it works on a school network with no internet.
#   docker build -t convlens .
#   docker run --rm -p 8000:8000 -v convlens-uploads:/data convlens
# The upload store (content-addressed PNGs) lives on the /data volume, so uploads survive a restart and
# several containers can share one store behind a load balancer.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONVLENS_STORE_DIR=/data/uploads

# The app finds data/, templates/ and static/ relative to its source tree, so the sources stay in /app
# and uvicorn is started from /app (uvicorn puts its working directory first on sys.path).
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY app ./app
COPY templates ./templates
COPY static ./static
COPY data ./data
RUN pip install --no-cache-dir . \
    && rm -rf build convlens.egg-info \
    && mkdir -p /data/uploads \
    && chown -R 10001:10001 /data

USER 10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# Shell form inside JSON so that WEB_CONCURRENCY is expanded; exec makes uvicorn PID 1 (signals reach it).
# --http app.tcp:NoDelayH11 turns on TCP_NODELAY, which uvicorn skips when it binds the socket for --workers.
CMD ["sh", "-c", "exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2} --http app.tcp:NoDelayH11"]
