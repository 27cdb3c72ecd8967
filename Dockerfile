# legcramp-cds: the same gunicorn server the README's run command starts, without a venv.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY hooks ./hooks
RUN pip install --disable-pip-version-check . && useradd --system --uid 10001 cds \
    && mkdir -p /app/var && chown cds /app/var
USER cds
EXPOSE 8080
# Mount a configuration file and point LEGCRAMP_CDS_CONFIG at it to override the defaults.
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health').status != 200)"
ENTRYPOINT ["legcramp-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
