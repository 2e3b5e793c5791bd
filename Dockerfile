# trackio_flask for a Hugging Face Space (Docker SDK) or any container host.
# One granian process (trackio_flask.rsgi): the in-memory rate limits and caches stay exact, and
# slow clients hold no thread (granian reads headers, the adapter bodies, before a thread is
# taken; see docs/decisions.md). Behind several workers and Redis, gunicorn serves as before.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=7860 \
    TRACKIO_FLASK_PROXY_HOPS=1 \
    TRACKIO_FLASK_TRUSTED_PROXIES=127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1,fc00::/7 \
    TRACKIO_FLASK_RATELIMIT_STORAGE_URI=memory://

# Spaces run containers as uid 1000.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user:user pyproject.toml README.md ./
COPY --chown=user:user trackio_flask ./trackio_flask
COPY --chown=user:user templates ./templates
COPY --chown=user:user static ./static
RUN pip install --no-cache-dir . && rm -rf build

USER user
EXPOSE 7860

# Persistent storage (when mounted) is /data: network-backed, so SQLite runs in DELETE journal
# mode there (WAL needs shared memory on one host). Without it, data lives in the container.
# TRACKIO_WRITE_TOKEN comes from the Space's secrets; the access log redacts ?write_token= links.
CMD ["sh", "-c", "if [ -d /data ] && [ -w /data ]; then export TRACKIO_DIR=\"${TRACKIO_DIR:-/data/trackio}\" TRACKIO_SQLITE_JOURNAL_MODE=\"${TRACKIO_SQLITE_JOURNAL_MODE:-DELETE}\"; else export TRACKIO_DIR=\"${TRACKIO_DIR:-$HOME/app/data}\"; fi; mkdir -p \"$TRACKIO_DIR\" && exec granian --interface rsgi --workers 1 --no-ws --respawn-failed-workers --host 0.0.0.0 --port \"${PORT}\" --factory trackio_flask.rsgi:create_server"]
