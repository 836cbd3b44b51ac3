/*
 * bench_mhd_min: the baseline REST server. A minimal libmicrohttpd server
 * that answers every GET with one prebuilt body (read from a file at start),
 * with the same daemon options as abidance-query's REST server (internal
 * polling thread pool, epoll, the same connection memory limit).
 *
 *   bench_mhd_min PORT BODY_FILE [THREADS]     (THREADS default 4: the service's)
 *
 * Listens on 127.0.0.1:PORT until SIGINT/SIGTERM; prints "ready" when listening.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static struct MHD_Response *resp;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    return MHD_queue_response(conn, 200, resp);
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct MHD_Daemon *d;
    char *body;
    long len;
    FILE *f;
    sigset_t set;
    int sig;
    unsigned threads;

    if (argc < 3) {
        fprintf(stderr, "usage: bench_mhd_min PORT BODY_FILE [THREADS]\n");
        return 2;
    }
    sa.sin_port = htons((uint16_t)bench_arg_long(argv[1], 1, 65535, "port"));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    threads = argc > 3 ? (unsigned)bench_arg_long(argv[3], 1, 64, "threads") : 4;
    f = fopen(argv[2], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (body = malloc((size_t)len)) == NULL ||
        fread(body, 1, (size_t)len, f) != (size_t)len) {
        bench_die("bench_mhd_min: cannot read %s", argv[2]);
    }
    fclose(f);
    resp = MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request,
                         NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)(64 * 1024), MHD_OPTION_CONNECTION_LIMIT, 1024u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL) {
        bench_die("bench_mhd_min: cannot listen on port %s", argv[1]);
    }
    printf("ready: %ld-byte body, %u threads\n", len, threads);
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    free(body);
    return 0;
}
