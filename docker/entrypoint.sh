#!/bin/sh
# Entry point of the application image, run by tini (PID 1 forwards signals and
# reaps the Python workers Spark forks).
#
# Spark on Kubernetes (the Spark operator's driver and executor pods) starts the
# image with the arguments `driver ...` or `executor` and describes the rest in
# environment variables; everything else (producer, schema Job, spark-submit by
# hand) is executed as given. `exec` keeps signals going to the program itself.
set -eu

# pyspark's own jars plus the connector jars of the image.
spark_classpath() {
  classpath="${SPARK_HOME}/jars/*:/opt/app/jars/*"
  # Set by Spark from spark.executor.extraClassPath (the name changed across releases).
  for extra in "${SPARK_EXECUTOR_EXTRA_CLASSPATH:-}" "${SPARK_EXTRA_CLASSPATH:-}" \
               "${SPARK_CLASSPATH:-}"; do
    if [ -n "$extra" ]; then classpath="$classpath:$extra"; fi
  done
  printf '%s' "$classpath"
}

case "${1:-}" in
  driver)
    shift
    # The operator runs spark-submit in cluster mode; inside the driver pod the
    # driver itself is started in client mode, bound to the pod's address.
    exec spark-submit \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    # Spark passes spark.executor.extraJavaOptions as SPARK_JAVA_OPT_0, _1, ...
    # (one option each, spaces kept): rebuild them as separate arguments.
    set --
    for name in $(env | sed -n 's/^\(SPARK_JAVA_OPT_[0-9]*\)=.*/\1/p' | sort -t_ -k4 -n); do
      eval "set -- \"\$@\" \"\${$name}\""
    done
    exec java "$@" \
      -Xms"${SPARK_EXECUTOR_MEMORY}" -Xmx"${SPARK_EXECUTOR_MEMORY}" \
      -cp "$(spark_classpath)" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL}" \
      --executor-id "${SPARK_EXECUTOR_ID}" \
      --cores "${SPARK_EXECUTOR_CORES}" \
      --app-id "${SPARK_APPLICATION_ID}" \
      --hostname "${SPARK_EXECUTOR_POD_IP}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME}"
    ;;
  "")
    echo "usage: <program> [arguments] | driver ... | executor" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
