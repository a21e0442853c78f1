/* SCTP over DTLS (RFC 8261) for data channels, on usrsctp without its own
 * threads: every call (input, send, timers) comes from the control layer's
 * single executor, and usrsctp's callbacks run inside those calls. */
#include "CShims.h"
#include <usrsctp.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <errno.h>
#include <arpa/inet.h>

struct rsfu_sctp {
    struct socket *sock;
    uintptr_t id;
    /* A message delivered in pieces (partial delivery) is gathered here. */
    uint8_t *partial;
    size_t partial_len;
    size_t partial_cap;
    uint16_t partial_sid;
    /* The message being gathered is dropped at its end (too large, or
     * memory ran out). */
    int partial_drop;
    size_t max_message;
};

static rsfu_sctp_output_fn output_fn;
static rsfu_sctp_message_fn message_fn;
static rsfu_sctp_event_fn event_fn;
static int initialized;

static int on_output(void *addr, void *buffer, size_t length, uint8_t tos, uint8_t set_df) {
    (void)tos; (void)set_df;
    struct rsfu_sctp *s = addr;
    if (output_fn) output_fn(s->id, buffer, length);
    return 0;
}

static void on_notification(struct rsfu_sctp *s, const union sctp_notification *n, size_t len) {
    if (len < sizeof(n->sn_header) || n->sn_header.sn_length != len) return;
    switch (n->sn_header.sn_type) {
    case SCTP_ASSOC_CHANGE:
        if (len >= sizeof(struct sctp_assoc_change)) {
            switch (n->sn_assoc_change.sac_state) {
            case SCTP_COMM_UP: event_fn(s->id, RSFU_SCTP_CONNECTED, 0); break;
            case SCTP_COMM_LOST: case SCTP_SHUTDOWN_COMP: event_fn(s->id, RSFU_SCTP_CLOSED, 0); break;
            case SCTP_CANT_STR_ASSOC: event_fn(s->id, RSFU_SCTP_FAILED, 0); break;
            default: break;
            }
        }
        break;
    case SCTP_PARTIAL_DELIVERY_EVENT:
        /* The peer gave up a message mid-way (partial reliability): what
         * was gathered of it must not prefix the next one. */
        if (len >= sizeof(struct sctp_pdapi_event) && n->sn_pdapi_event.pdapi_indication == SCTP_PARTIAL_DELIVERY_ABORTED) {
            s->partial_len = 0;
            s->partial_drop = 0;
        }
        break;
    case SCTP_STREAM_RESET_EVENT: {
        const struct sctp_stream_reset_event *e = &n->sn_strreset_event;
        if (len < sizeof(*e) || !(e->strreset_flags & SCTP_STREAM_RESET_INCOMING_SSN)) break;
        if (e->strreset_flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED)) break;
        size_t count = (len - sizeof(*e)) / sizeof(uint16_t);
        uintptr_t id = s->id;
        for (size_t i = 0; i < count; i++) event_fn(id, RSFU_SCTP_STREAM_RESET, e->strreset_stream_list[i]);
        break;
    }
    default:
        break;
    }
}

static int on_receive(struct socket *sock, union sctp_sockstore addr, void *data, size_t len,
                      struct sctp_rcvinfo info, int flags, void *ulp) {
    (void)sock; (void)addr;
    struct rsfu_sctp *s = ulp;
    if (data == NULL) return 1;
    if (flags & MSG_NOTIFICATION) {
        on_notification(s, data, len);
    } else if (!(flags & MSG_EOR) || s->partial_len > 0 || s->partial_drop) {
        /* Part of a larger message: gather it, bounded by the maximum
         * message size. A piece of another stream means the previous
         * message was abandoned. */
        if ((s->partial_len > 0 || s->partial_drop) && info.rcv_sid != s->partial_sid) {
            s->partial_len = 0;
            s->partial_drop = 0;
        }
        s->partial_sid = info.rcv_sid;
        if (!s->partial_drop && s->partial_len + len > s->max_message) s->partial_drop = 1;
        if (!s->partial_drop && s->partial_len + len > s->partial_cap) {
            size_t cap = s->partial_cap ? s->partial_cap : 65536;
            while (cap < s->partial_len + len) cap *= 2;
            uint8_t *p = realloc(s->partial, cap);
            if (p) { s->partial = p; s->partial_cap = cap; } else { s->partial_drop = 1; }
        }
        if (!s->partial_drop) {
            memcpy(s->partial + s->partial_len, data, len);
            s->partial_len += len;
        }
        if (flags & MSG_EOR) {
            uintptr_t id = s->id;
            int deliver = !s->partial_drop;
            size_t total = s->partial_len;
            s->partial_len = 0;
            s->partial_drop = 0;
            if (deliver) message_fn(id, info.rcv_sid, ntohl(info.rcv_ppid), s->partial, total);
        }
    } else if (len <= s->max_message) {
        message_fn(s->id, info.rcv_sid, ntohl(info.rcv_ppid), data, len);
    }
    free(data);
    return 1;
}

/* Free space in the send buffer changed (usrsctp calls this as data is
 * acknowledged): the caller derives the buffered amount from it. */
static int on_send_space(struct socket *sock, uint32_t sb_free, void *ulp) {
    (void)sock;
    struct rsfu_sctp *s = ulp;
    event_fn(s->id, RSFU_SCTP_SEND_SPACE, (int)(sb_free > INT32_MAX ? INT32_MAX : sb_free));
    return 0;
}

static void no_debug(const char *format, ...) { (void)format; }

int rsfu_sctp_global_init(rsfu_sctp_output_fn output, rsfu_sctp_message_fn message, rsfu_sctp_event_fn event) {
    if (initialized) return 0;
    output_fn = output;
    message_fn = message;
    event_fn = event;
    usrsctp_init_nothreads(0, on_output, no_debug);
    usrsctp_sysctl_set_sctp_ecn_enable(0);
    usrsctp_sysctl_set_sctp_blackhole(2);
    usrsctp_sysctl_set_sctp_no_csum_on_loopback(0);
    usrsctp_sysctl_set_sctp_delayed_sack_time_default(20);
    usrsctp_sysctl_set_sctp_pr_enable(1);
    usrsctp_sysctl_set_sctp_reconfig_enable(1);
    usrsctp_sysctl_set_sctp_nrsack_enable(1);
    initialized = 1;
    return 0;
}

void rsfu_sctp_handle_timers(uint32_t elapsed_ms) { usrsctp_handle_timers(elapsed_ms); }

static struct sockaddr_conn conn_address(struct rsfu_sctp *s, uint16_t port) {
    struct sockaddr_conn a;
    memset(&a, 0, sizeof(a));
    a.sconn_family = AF_CONN;
    a.sconn_port = htons(port);
    a.sconn_addr = s;
    return a;
}

struct rsfu_sctp *rsfu_sctp_create(uintptr_t id, uint16_t os, uint16_t mis, uint32_t send_buffer, uint32_t max_message) {
    struct rsfu_sctp *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->id = id;
    s->max_message = max_message;
    usrsctp_register_address(s);
    s->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, on_receive, on_send_space, 0, s);
    if (!s->sock) { usrsctp_deregister_address(s); free(s); return NULL; }
    usrsctp_set_non_blocking(s->sock, 1);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    usrsctp_setsockopt(s->sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    struct sctp_assoc_value av = { .assoc_id = SCTP_ALL_ASSOC, .assoc_value = SCTP_ENABLE_RESET_STREAM_REQ };
    usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av, sizeof(av));
    int one = 1;
    usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_NODELAY, &one, sizeof(one));
    usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RECVRCVINFO, &one, sizeof(one));
    uint16_t events[] = { SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT, SCTP_PARTIAL_DELIVERY_EVENT };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        struct sctp_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.se_assoc_id = SCTP_ALL_ASSOC;
        ev.se_on = 1;
        ev.se_type = events[i];
        usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev));
    }
    struct sctp_initmsg init;
    memset(&init, 0, sizeof(init));
    init.sinit_num_ostreams = os;
    init.sinit_max_instreams = mis;
    usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_INITMSG, &init, sizeof(init));
    int buffer = (int)send_buffer;
    usrsctp_setsockopt(s->sock, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
    struct sockaddr_conn local = conn_address(s, 5000);
    if (usrsctp_bind(s->sock, (struct sockaddr *)&local, sizeof(local)) < 0) {
        usrsctp_close(s->sock);
        usrsctp_deregister_address(s);
        free(s);
        return NULL;
    }
    return s;
}

int rsfu_sctp_connect(struct rsfu_sctp *s, uint16_t remote_port) {
    struct sockaddr_conn remote = conn_address(s, remote_port);
    int r = usrsctp_connect(s->sock, (struct sockaddr *)&remote, sizeof(remote));
    if (r < 0 && errno != EINPROGRESS) return -1;
    /* Packets of at most 1200 bytes, as WebRTC stacks use: room for DTLS
     * and the UDP/IP headers on any path, no path MTU discovery. */
    struct sctp_paddrparams pp;
    memset(&pp, 0, sizeof(pp));
    memcpy(&pp.spp_address, &remote, sizeof(remote));
    pp.spp_flags = SPP_PMTUD_DISABLE;
    pp.spp_pathmtu = 1200;
    usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp));
    return 0;
}

void rsfu_sctp_input(struct rsfu_sctp *s, const void *data, size_t len) {
    usrsctp_conninput(s, data, len, 0);
}

int rsfu_sctp_send(struct rsfu_sctp *s, uint16_t sid, uint32_t ppid, int ordered,
                   int max_retransmits, int max_lifetime_ms, const void *data, size_t len) {
    struct sctp_sendv_spa spa;
    memset(&spa, 0, sizeof(spa));
    spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
    spa.sendv_sndinfo.snd_sid = sid;
    spa.sendv_sndinfo.snd_ppid = htonl(ppid);
    spa.sendv_sndinfo.snd_flags = SCTP_EOR | (ordered ? 0 : SCTP_UNORDERED);
    if (max_retransmits >= 0) {
        spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
        spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_RTX;
        spa.sendv_prinfo.pr_value = (uint32_t)max_retransmits;
    } else if (max_lifetime_ms >= 0) {
        spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
        spa.sendv_prinfo.pr_policy = SCTP_PR_SCTP_TTL;
        spa.sendv_prinfo.pr_value = (uint32_t)max_lifetime_ms;
    }
    /* An empty message cannot be sent: WebRTC sends one zero byte with the
     * "empty" PPID instead (RFC 8831). */
    static const uint8_t zero = 0;
    if (len == 0) { data = &zero; len = 1; }
    ssize_t n = usrsctp_sendv(s->sock, data, len, NULL, 0, &spa, sizeof(spa), SCTP_SENDV_SPA, 0);
    return n < 0 ? -errno : 0;
}

int rsfu_sctp_reset_stream(struct rsfu_sctp *s, uint16_t sid) {
    size_t size = sizeof(struct sctp_reset_streams) + sizeof(uint16_t);
    struct sctp_reset_streams *r = calloc(1, size);
    if (!r) return -1;
    r->srs_assoc_id = SCTP_ALL_ASSOC;
    r->srs_flags = SCTP_STREAM_RESET_OUTGOING;
    r->srs_number_streams = 1;
    r->srs_stream_list[0] = sid;
    int rc = usrsctp_setsockopt(s->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, r, (socklen_t)size);
    free(r);
    return rc;
}

void rsfu_sctp_close(struct rsfu_sctp *s) {
    if (!s) return;
    usrsctp_close(s->sock);
    usrsctp_deregister_address(s);
    free(s->partial);
    free(s);
}
