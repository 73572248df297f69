# One image per service: only that service's dependencies (its pyproject extra), run as a non-root user.
#   docker build --build-arg SERVICE=profile -t marksman/profile .
#   docker build --build-arg SERVICE=recommend -t marksman/recommend .   (LightFM only here)
# BASE is any Debian-like image with Python 3.11: the official python:3.11-slim, or the image
# deploy/ci/containers.sh makes with debootstrap (Debian bookworm's python3.11) where no registry is reachable.
ARG BASE=python:3.11-slim

FROM ${BASE} AS build
# A folder of wheels inside the build context (pip wheel on the host); empty: install from PyPI.
ARG WHEELS=deploy/docker/wheels
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
COPY ${WHEELS}/ /wheels/
RUN python3 -m venv /opt/marksman \
    && printf '#!/bin/sh\nif ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels "$@"; fi\nexec /opt/marksman/bin/pip install "$@"\n' \
       > /usr/local/bin/install-marksman && chmod +x /usr/local/bin/install-marksman
# Dependencies first, from pyproject.toml alone: the shared runtime is one layer every service's build
# reuses, then the service's extra; only the last step depends on the source.
# (README.md is only package metadata: an empty one keeps README edits from rebuilding these layers.)
COPY pyproject.toml /src/
RUN touch /src/README.md && install-marksman /src
ARG SERVICE=profile
ARG EXTRA=${SERVICE}
RUN install-marksman "/src[${EXTRA}]"
COPY gen /src/gen
COPY services /src/services
RUN install-marksman --no-deps --force-reinstall /src \
    && { /opt/marksman/bin/pip uninstall --yes pip setuptools wheel >/dev/null 2>&1 || true; }

FROM ${BASE}
ARG SERVICE=profile
# Shared libraries a service's wheels need from the system (recommend: libgomp1 for LightFM's OpenMP);
# skipped when the base has them already (CI's base image does: its builds have no network).
ARG SYSTEM_PACKAGES=""
RUN if [ -n "${SYSTEM_PACKAGES}" ] && ! dpkg -s ${SYSTEM_PACKAGES} >/dev/null 2>&1; then \
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            ${SYSTEM_PACKAGES} >/dev/null && rm -rf /var/lib/apt/lists/*; \
    fi
# The probe and the default command read it: one HEALTHCHECK and one CMD for every service.
ENV MARKSMAN_SERVICE=${SERVICE} \
    PATH=/opt/marksman/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 marksman \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/marksman --no-create-home \
       --shell /usr/sbin/nologin marksman \
    && mkdir -p /var/lib/marksman && chown 10001:10001 /var/lib/marksman
COPY --from=build /opt/marksman /opt/marksman
WORKDIR /var/lib/marksman
USER 10001:10001
# gRPC health for a service, GET /healthz for the gateway, on the port its settings bind.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=6 \
    CMD ["python", "-m", "services.common.healthcheck"]
STOPSIGNAL SIGTERM
# exec: python becomes PID 1 and gets SIGTERM itself (serve() and uvicorn stop gracefully on it).
CMD ["sh", "-c", "exec python -m \"services.${MARKSMAN_SERVICE}\""]
