# One image for every GITS service; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 gits && mkdir /state && chown gits /state
WORKDIR /app

COPY pyproject.toml constraints.txt README.md ./
COPY gits_common ./gits_common
COPY gits_ml ./gits_ml
COPY queue_manager ./queue_manager
COPY workers ./workers
COPY data_source ./data_source
COPY ground_truth_collector ./ground_truth_collector
COPY ml_data_api ./ml_data_api
COPY monitoring_api ./monitoring_api
COPY retraining_api ./retraining_api
COPY django_admin ./django_admin
COPY ml_data_loader ./ml_data_loader
RUN pip install --no-cache-dir -c constraints.txt .

USER gits
