# syntax=docker/dockerfile:1.7
# One application image for every process of the pipeline:
#   producer          python -m producer live|replay|synthetic
#   stream job        Spark operator driver and executor pods (k8s/base/stream-processor),
#                     started through docker/entrypoint.sh as `driver ...` / `executor`
#   recompute         spark-submit --master 'local[*]' /opt/app/jobs/recompute.py --from ... --to ...
#   schema Job        python /opt/schema-job/apply_schema.py (k8s/base/schema-job)
#
# Spark comes from the pyspark wheel (spark-submit is on PATH), on Debian bookworm's
# OpenJDK 17: Spark 3.5 supports Java 17, and bookworm is the last Debian release
# that ships it. The Kafka, Avro and Cassandra connector jars are resolved by Maven
# from stack/maven/spark/pom.xml, the same pom the local stack uses; the GCS
# connector (checkpoints on gs:// in the cloud) comes from Maven Central too.
#
# Base images are pinned by tag here. Release builds also pin the digest, so a
# re-pushed tag cannot change what is built:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm   # -> sha256:...
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> \
#                --build-arg MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17
# Shaded: its Guava and gRPC cannot clash with Spark's. The 3.0 line is built for
# Hadoop 3.3, the client pyspark 3.5 ships.
ARG GCS_CONNECTOR_VERSION=3.0.13

# ---------------------------------------------------------------- connector jars
FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY stack/maven/spark/pom.xml stack/maven/spark/pom.xml
ARG GCS_CONNECTOR_VERSION
# -C: a jar whose checksum does not match Maven Central's fails the build.
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -q -C -f stack/maven/spark/pom.xml dependency:copy-dependencies \
        -DoutputDirectory=/opt/app/jars \
 && mvn -B -q -C org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
        -Dartifact=com.google.cloud.bigdataoss:gcs-connector:${GCS_CONNECTOR_VERSION}:jar:shaded \
        -DoutputDirectory=/opt/app/jars

# ---------------------------------------------------------------- Python dependencies
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Only the dependency list of pyproject.toml, so source edits do not reinstall pyspark.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --requirement /tmp/requirements.txt

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="market-pipeline" \
      org.opencontainers.image.description="Finnhub trades -> Kafka -> Spark -> Cassandra" \
      org.opencontainers.image.licenses="Apache-2.0"
# A failing command on the left of a pipe fails the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The man folder is missing from slim images and the JRE's postinst needs it.
# tini reaps the Python worker processes Spark forks and forwards SIGTERM.
# Debian versions are not pinned: the mirror drops a version as soon as its
# security update lands, so a pin would break rebuilds; the pinned base image
# tag fixes the release (bookworm) instead.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /opt/app --shell /usr/sbin/nologin app

COPY --from=deps /opt/venv /opt/venv
COPY --from=jars /opt/app/jars /opt/app/jars
COPY pyproject.toml /opt/app/
COPY cql /opt/app/cql
COPY schemas /opt/app/schemas
COPY contract /opt/app/contract
COPY producer /opt/app/producer
COPY jobs /opt/app/jobs
COPY --chmod=0755 docker/entrypoint.sh /opt/app/bin/entrypoint

# The code runs from /opt/app (not site-packages): the modules find cql/ and
# schemas/ relative to the project root. Spark reads spark-defaults.conf from
# SPARK_CONF_DIR: the connector jars go on the classpath of every spark-submit,
# and its Python processes use the virtualenv. HOME is the writable /tmp, since
# the pods run with a read-only root filesystem. SPARK_HOME is pyspark's folder
# (its jars/ is the executors' classpath in docker/entrypoint.sh).
ENV PATH=/opt/venv/bin:$PATH \
    SPARK_HOME=/opt/venv/lib/python3.11/site-packages/pyspark \
    PYTHONPATH=/opt/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SPARK_CONF_DIR=/opt/app/spark-conf \
    PYSPARK_PYTHON=/opt/venv/bin/python \
    HOME=/tmp
RUN mkdir -p /opt/app/spark-conf \
 && printf '%s\n' \
      'spark.driver.extraClassPath   /opt/app/jars/*' \
      'spark.executor.extraClassPath /opt/app/jars/*' \
      'spark.sql.session.timeZone    UTC' \
      > /opt/app/spark-conf/spark-defaults.conf \
 && test -d "$SPARK_HOME/jars" \
 && python -m compileall -q /opt/app \
 && java -version 2>&1 | head -1 \
 && spark-submit --version 2>&1 | grep -m1 -o 'version 3\.5\.[0-9]*'

WORKDIR /opt/app
# Numeric, so Kubernetes can verify runAsNonRoot without a user database.
USER 10001:10001
# Kubernetes containers set `args:` only, never `command:`: a command would replace
# this entry point and make java or python PID 1, which ignores SIGTERM by default.
ENTRYPOINT ["tini", "--", "/opt/app/bin/entrypoint"]
CMD ["python", "-m", "producer", "--help"]
