# legcramp-cds: the same gunicorn server `./scripts/run` starts, without a venv.
#
# Runs as uid/gid 10001 with a read-only root filesystem: everything it writes goes to the data
# volume (/var/lib/legcramp-cds: the SQLite store, when that is the database) or to /tmp (the
# workers' metric files and gunicorn's heartbeat files). So, with Docker:
#   docker run --read-only --tmpfs /tmp -v legcramp-data:/var/lib/legcramp-cds -p 8080:8080 IMAGE
# Kubernetes manifests: deploy/kubernetes/ (README, "Kubernetes").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# A fixed numeric user and group, so that Kubernetes' runAsNonRoot can verify it and volumes
# can be given to it by number.
RUN groupadd --system --gid 10001 legcramp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin legcramp

WORKDIR /src
# Dependencies in a layer of their own: rebuilt when pyproject.toml changes, not on every code
# change. They are read from pyproject.toml (the package itself is not installed here), with the
# build backend, so that the package's own install below needs nothing from the network.
COPY pyproject.toml ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); \
print('\\n'.join(d['project']['dependencies'] + d['build-system']['requires']))" \
    >/tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# The service itself, without dependencies (they are all above).
COPY README.md ./
COPY cds_service ./cds_service
COPY hooks ./hooks
RUN pip install --no-deps --no-build-isolation . && rm -rf build *.egg-info

# The data volume, owned by the service's user. [store] data_dir points there, so a SQLite
# store (the default, a relative [store] url) is on it, with or without a configuration file
# (otherwise: beside that file, which is mounted read-only, or in a home the user does not
# have). The working directory is there too, for anything written relative to it.
RUN install -d -o 10001 -g 10001 -m 0700 /var/lib/legcramp-cds
ENV LEGCRAMP_CDS_STORE__DATA_DIR=/var/lib/legcramp-cds
VOLUME ["/var/lib/legcramp-cds"]
WORKDIR /var/lib/legcramp-cds

USER 10001:10001
EXPOSE 8080
# Docker's own check; Kubernetes uses the probes in deploy/kubernetes/deployment.yaml instead.
# Mount a configuration file and point LEGCRAMP_CDS_CONFIG (or --config) at it to override the
# embedded defaults.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
ENTRYPOINT ["legcramp-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
