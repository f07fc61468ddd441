# syntax=docker/dockerfile:1.7
# One application image for every process of the pipeline:
#   producer          python -m producer live|replay|synthetic
#   stream job        spark-submit --master 'local[*]' /opt/app/jobs/stream_processor.py
#   recompute         spark-submit --master 'local[*]' /opt/app/jobs/recompute.py --from ... --to ...
#   schema Job        python /opt/schema-job/apply_schema.py (k8s/base/schema-job)
#
# Spark comes from the pyspark wheel (spark-submit is on PATH), on Debian bookworm's
# OpenJDK 17: Spark 3.5 supports Java 17, and bookworm is the last Debian release
# that ships it. The Kafka, Avro and Cassandra connector jars are resolved by Maven
# from stack/maven/spark/pom.xml, the same pom the local stack uses.
#
# Base images are pinned by tag here. Release builds also pin the digest, so a
# re-pushed tag cannot change what is built:
#   docker buildx imagetools inspect python:3.11.14-slim-bookworm   # -> sha256:...
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> \
#                --build-arg MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MAVEN_IMAGE=maven:3.9.11-eclipse-temurin-17

# ---------------------------------------------------------------- connector jars
FROM ${MAVEN_IMAGE} AS jars
WORKDIR /build
COPY stack/maven/spark/pom.xml stack/maven/spark/pom.xml
RUN --mount=type=cache,target=/root/.m2 \
    mvn -B -q -f stack/maven/spark/pom.xml dependency:copy-dependencies \
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

# The man folder is missing from slim images and the JRE's postinst needs it.
# tini reaps the Python worker processes Spark forks and forwards SIGTERM.
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
COPY stack /opt/app/stack
COPY producer /opt/app/producer
COPY jobs /opt/app/jobs

# The code runs from /opt/app (not site-packages): the modules find cql/ and
# schemas/ relative to the project root. Spark reads spark-defaults.conf from
# SPARK_CONF_DIR: the connector jars go on the classpath of every spark-submit,
# and its Python processes use the virtualenv. HOME is the writable /tmp, since
# the pods run with a read-only root filesystem.
ENV PATH=/opt/venv/bin:$PATH \
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
 && python -m compileall -q /opt/app \
 && java -version 2>&1 | head -1 \
 && spark-submit --version 2>&1 | grep -m1 -o 'version 3\.5\.[0-9]*'

WORKDIR /opt/app
# Numeric, so Kubernetes can verify runAsNonRoot without a user database.
USER 10001:10001
ENTRYPOINT ["tini", "--"]
CMD ["python", "-m", "producer", "--help"]
