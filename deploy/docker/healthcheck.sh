#!/bin/bash
# abidance-healthcheck [URL]: exit 0 when URL answers HTTP 200 within 3 s.
# The container image's HEALTHCHECK; needs only bash (no curl in the image).
#
#   abidance-healthcheck            probe the service running as the container's
#                                   PID 1, at the address its environment sets:
#     abidance-query   http://$ABIDANCE_HTTP_ADDR/healthz           (127.0.0.1:8080)
#     abidance-ingest  http://$ABIDANCE_INGEST_HEALTH_ADDR/healthz  (127.0.0.1:8082)
#     abidance-sim     http://$ABIDANCE_SIM_LISTEN/api/v3/ping      (127.0.0.1:9443)
#   abidance-healthcheck URL        probe URL
#
# A wildcard host (0.0.0.0, [::]) is reached over loopback. Settings given as
# command-line flags instead of environment variables are not seen here.
set -u
if [ $# -ge 1 ]; then
    url=$1
else
    comm=$(cat /proc/1/comm 2>/dev/null || true)
    case $comm in
    abidance-ingest) url=http://${ABIDANCE_INGEST_HEALTH_ADDR:-127.0.0.1:8082}/healthz ;;
    abidance-sim) url=http://${ABIDANCE_SIM_LISTEN:-127.0.0.1:9443}/api/v3/ping ;;
    *) url=http://${ABIDANCE_HTTP_ADDR:-127.0.0.1:8080}/healthz ;;
    esac
fi
case $url in
http://*) rest=${url#http://} ;;
*)
    echo "abidance-healthcheck: only http:// URLs: $url" >&2
    exit 2
    ;;
esac
hostport=${rest%%/*}
path=/${rest#*/}
[ "$hostport" = "$rest" ] && path=/
port=${hostport##*:}
host=${hostport%:*}
host=${host#[}
host=${host%]}
case $host in '' | 0.0.0.0) host=127.0.0.1 ;; ::) host=::1 ;; esac
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
    echo "abidance-healthcheck: cannot connect to $host:$port" >&2
    exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
if ! IFS=' ' read -r -t 3 _ code _ <&3; then
    echo "abidance-healthcheck: no answer from $url" >&2
    exit 1
fi
if [ "$code" != 200 ]; then
    echo "abidance-healthcheck: $url answered $code" >&2
    exit 1
fi
exit 0
