#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

#define CHUNK 4096

struct health {
    struct lws_vhost *vh;
    health_render_cb render_health, render_metrics;
    void *ud;
    struct lws_protocols protocols[2];
    struct pub_buf scratch;
    char iface[AB_CONFIG_HOST_MAX];
};

/* Per HTTP connection: the body being sent (with LWS_PRE headroom). */
struct pss {
    unsigned char *buf; /* LWS_PRE + body */
    size_t len, sent;
    bool head; /* HEAD: headers only */
};

static void pss_clear(struct pss *p)
{
    free(p->buf);
    memset(p, 0, sizeof(*p));
}

static int respond(struct lws *wsi, struct pss *p, unsigned status, const char *type,
                   const char *body, size_t len)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *pos = start,
                                       *end = hdr + sizeof(hdr) - 1;
    pss_clear(p);
    p->buf = malloc(LWS_PRE + (len ? len : 1));
    if (!p->buf)
        return -1;
    memcpy(p->buf + LWS_PRE, body, len);
    p->len = len;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &pos, end))
        return -1;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &pos, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &pos, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static int on_http(struct lws *wsi, struct health *h, struct pss *p, const char *uri)
{
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    if (!get && !head) {
        static const char msg[] = "{\"error\":{\"code\":\"method_not_allowed\","
                                  "\"message\":\"only GET\"}}\n";
        return respond(wsi, p, 405, "application/json", msg, sizeof(msg) - 1);
    }
    int rc;
    const char *type;
    if (strcmp(uri, "/healthz") == 0) {
        rc = h->render_health(h->ud, &h->scratch);
        type = "application/json";
    } else if (strcmp(uri, "/metrics") == 0) {
        rc = h->render_metrics(h->ud, &h->scratch);
        type = "text/plain; version=0.0.4";
    } else {
        static const char msg[] = "{\"error\":{\"code\":\"not_found\","
                                  "\"message\":\"try /healthz or /metrics\"}}\n";
        return respond(wsi, p, 404, "application/json", msg, sizeof(msg) - 1);
    }
    if (rc < 0) {
        static const char msg[] = "{\"error\":{\"code\":\"internal\","
                                  "\"message\":\"could not render\"}}\n";
        return respond(wsi, p, 500, "application/json", msg, sizeof(msg) - 1);
    }
    rc = respond(wsi, p, 200, type, h->scratch.p ? h->scratch.p : "", h->scratch.len);
    p->head = head;
    return rc;
}

static int on_writeable(struct lws *wsi, struct pss *p)
{
    if (!p->buf)
        return 0;
    size_t left = p->head ? 0 : p->len - p->sent;
    size_t n = left > CHUNK ? CHUNK : left;
    bool final = n == left;
    if (n > 0) {
        /* lws may use the LWS_PRE bytes before the chunk: they are either the
         * headroom or body bytes already sent. */
        if (lws_write(wsi, p->buf + LWS_PRE + p->sent, n,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return -1;
        p->sent += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    pss_clear(p);
    if (lws_http_transaction_completed(wsi))
        return -1;
    return 0;
}

static int health_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    struct pss *p = user;
    struct health *h = lws_vhost_user(lws_get_vhost(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!h || !p)
            return -1;
        return on_http(wsi, h, p, in ? (const char *)in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return p ? on_writeable(wsi, p) : 0;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (p)
            pss_clear(p);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

int health_start(struct lws_context *cx, const struct ab_config_addr *addr,
                 health_render_cb render_health, health_render_cb render_metrics, void *ud,
                 struct health **out)
{
    *out = NULL;
    struct health *h = calloc(1, sizeof(*h));
    if (!h)
        return AB_ENOMEM;
    h->render_health = render_health;
    h->render_metrics = render_metrics;
    h->ud = ud;
    pub_buf_init(&h->scratch, 16u * 1024 * 1024);
    h->protocols[0] = (struct lws_protocols){
        .name = "abidance-ingest-health",
        .callback = health_callback,
        .per_session_data_size = sizeof(struct pss),
        .rx_buffer_size = 0,
    };
    snprintf(h->iface, sizeof(h->iface), "%s", addr->host);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "health";
    info.port = addr->port;
    info.iface = h->iface;
    info.protocols = h->protocols;
    info.user = h;
    info.options = 0;
    h->vh = lws_create_vhost(cx, &info);
    if (!h->vh) {
        pub_buf_deinit(&h->scratch);
        free(h);
        return AB_EIO;
    }
    *out = h;
    return 0;
}

uint16_t health_port(const struct health *h)
{
    return h ? (uint16_t)lws_get_vhost_listen_port(h->vh) : 0;
}

void health_free(struct health *h)
{
    if (!h)
        return;
    pub_buf_deinit(&h->scratch);
    free(h);
}
