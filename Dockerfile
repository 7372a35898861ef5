# One Dockerfile for the six service images. Build from the repository root, e.g.
#   docker build --build-arg PACKAGE=isseimail-composer --build-arg COMMAND=isseimail-composer \
#     --build-arg PORT=8083 -t isseimail/composer:0.1.0 .
# (`make images` builds all six, from services.toml.) No `# syntax=` line: the builder's
# own frontend is used, so an offline engine never tries to pull one.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

# --- the workspace's pyproject.toml files and uv.lock only: the dependency layer below is rebuilt only when
# one of them changes, and no list of workspace members is repeated here ---
FROM ${BASE_IMAGE} AS manifests
COPY . /src
RUN find /src -type f ! -name pyproject.toml ! -name uv.lock -delete \
    && find /src -depth -type d -empty -delete

# --- build stage: uv resolves from uv.lock into /app/.venv; uv and caches stay here ---
FROM ${BASE_IMAGE} AS build
# pinned: the uv that wrote uv.lock, installed from PyPI (no second registry needed); before ARG PACKAGE,
# so the six builds share this layer
ARG UV_VERSION=0.13.9
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir --quiet "uv==${UV_VERSION}"
ARG PACKAGE
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_NATIVE_TLS=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY --from=manifests /src /src
RUN test -n "${PACKAGE}" || { echo "build arg PACKAGE is required" >&2; exit 1; }; \
    /opt/uv/bin/uv sync --frozen --no-dev --no-install-workspace --package "${PACKAGE}"
COPY . /src
# --no-editable: the workspace packages are installed into the venv; the sources are not needed later
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --package "${PACKAGE}"

# --- runtime stage: the interpreter, the venv, a non-root user; nothing else ---
FROM ${BASE_IMAGE} AS runtime
ARG COMMAND
ARG PORT
ARG UID=10001
RUN test -n "${COMMAND}" && test -n "${PORT}" || { echo "build args COMMAND and PORT are required" >&2; exit 1; }; \
    groupadd --system --gid "${UID}" isseimail \
    && useradd --system --uid "${UID}" --gid isseimail --no-create-home --shell /usr/sbin/nologin isseimail
COPY --from=build /app/.venv /app/.venv
RUN ln -s "/app/.venv/bin/${COMMAND}" /app/service
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ISSEIMAIL_HTTP_HOST=0.0.0.0 \
    HEALTHCHECK_PORT=${PORT}
USER ${UID}:${UID}
EXPOSE ${PORT}
# liveness only (/healthz): readiness decides about traffic, a dependency outage must not restart us.
# stdlib only: the image has no curl or wget
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['HEALTHCHECK_PORT'] + '/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/service"]
