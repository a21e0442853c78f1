#define _GNU_SOURCE 1
#include <dlfcn.h>
#include "CShims.h"
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int rsfu_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int64_t rsfu_thread_cpu_ns(pthread_t thread) {
    clockid_t cid;
    if (pthread_getcpuclockid(thread, &cid) != 0) return -1;
    struct timespec ts;
    if (clock_gettime(cid, &ts) != 0) return -1;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int rsfu_thread_rusage(struct rusage *out) {
    return getrusage(RUSAGE_THREAD, out);
}

int64_t rsfu_self_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t rsfu_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Wall-clock time as a 64-bit NTP timestamp (RFC 5905: seconds since 1900
   in the high 32 bits, binary fraction in the low 32). */
uint64_t rsfu_ntp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seconds = (uint64_t)ts.tv_sec + 2208988800ULL;
    uint64_t fraction = ((uint64_t)ts.tv_nsec << 32) / 1000000000ULL;
    return seconds << 32 | fraction;
}

size_t rsfu_gso_cmsg_space(void) { return CMSG_SPACE(sizeof(uint16_t)); }

size_t rsfu_write_gso_cmsg(void *buf, uint16_t segment_size) {
    struct cmsghdr *c = (struct cmsghdr *)buf;
    memset(buf, 0, CMSG_SPACE(sizeof(uint16_t)));
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(c), &segment_size, sizeof(uint16_t));
    return CMSG_SPACE(sizeof(uint16_t));
}

int rsfu_errno(void) { return errno; }

unsigned rsfu_setup_single_issuer(void) { return IORING_SETUP_SINGLE_ISSUER; }
unsigned rsfu_setup_defer_taskrun(void) { return IORING_SETUP_DEFER_TASKRUN; }
unsigned rsfu_setup_coop_taskrun(void) { return IORING_SETUP_COOP_TASKRUN; }
unsigned rsfu_cqe_f_more(void) { return IORING_CQE_F_MORE; }
unsigned rsfu_cqe_f_buffer(void) { return IORING_CQE_F_BUFFER; }
unsigned rsfu_cqe_buffer_shift(void) { return IORING_CQE_BUFFER_SHIFT; }
unsigned rsfu_sqe_buffer_select(void) { return IOSQE_BUFFER_SELECT; }

int rsfu_recvmmsg(int fd, struct rsfu_mmsghdr *msgs, unsigned int n, int flags) {
    return recvmmsg(fd, (struct mmsghdr *)msgs, n, flags, NULL);
}

int rsfu_sendmmsg(int fd, struct rsfu_mmsghdr *msgs, unsigned int n, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)msgs, n, flags);
}

int rsfu_msg_waitforone(void) { return MSG_WAITFORONE; }

size_t rsfu_receive_cmsg_space(void) { return CMSG_SPACE(sizeof(uint32_t)); }

int rsfu_enable_rxq_ovfl(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
}

int64_t rsfu_rxq_ovfl(struct io_uring_recvmsg_out *out, struct msghdr *msgh) {
    for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(out, msgh); c != NULL;
         c = io_uring_recvmsg_cmsg_nexthdr(out, msgh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL && c->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            uint32_t v;
            memcpy(&v, CMSG_DATA(c), sizeof(v));
            return v;
        }
    }
    return -1;
}

#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>

/* HMAC-SHA1 on the stack (no allocation), for STUN MESSAGE-INTEGRITY:
 * over part1 then part2 (STUN checks hash a rewritten header, then the rest). */
void rsfu_hmac_sha1_2(const uint8_t *key, size_t key_len, const uint8_t *part1, size_t len1,
                      const uint8_t *part2, size_t len2, uint8_t out[20]) {
    uint8_t k[64], pad[64], inner[20];
    SHA_CTX ctx;
    memset(k, 0, sizeof(k));
    if (key_len > 64) {
        SHA1(key, key_len, k);
    } else {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    SHA1_Init(&ctx);
    SHA1_Update(&ctx, pad, 64);
    SHA1_Update(&ctx, part1, len1);
    if (len2) SHA1_Update(&ctx, part2, len2);
    SHA1_Final(inner, &ctx);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    SHA1_Init(&ctx);
    SHA1_Update(&ctx, pad, 64);
    SHA1_Update(&ctx, inner, 20);
    SHA1_Final(out, &ctx);
}

void rsfu_hmac_sha1(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t out[20]) {
    rsfu_hmac_sha1_2(key, key_len, data, len, NULL, 0, out);
}

/* Return addresses of the calling thread's stack, by frame pointers (no
   allocation: usable inside a malloc hook). */
int rsfu_capture_stack(void **out, int max) {
    void **frame = (void **)__builtin_frame_address(0);
    int n = 0;
    while (frame && n < max) {
        void *ret = frame[1];
        if (!ret) break;
        out[n++] = ret;
        void **next = (void **)frame[0];
        if (next <= frame || (char *)next - (char *)frame > (1 << 20)) break;
        frame = next;
    }
    return n;
}

/* The symbol an address is in (for diagnostics), or NULL. */
const char *rsfu_symbol_name(void *address) {
    Dl_info info;
    if (dladdr(address, &info) && info.dli_sname) return info.dli_sname;
    return NULL;
}

/* An address's offset in its object file (for addr2line). */
uintptr_t rsfu_symbol_offset(void *address) {
    Dl_info info;
    if (dladdr(address, &info) && info.dli_fbase) return (uintptr_t)address - (uintptr_t)info.dli_fbase;
    return 0;
}

/* io_uring_getevents_arg as kernels from 6.12 read it: the former pad is
   min_wait_usec (IORING_FEAT_MIN_TIMEOUT). Debian 12's liburing (2.3)
   predates it, so the enter call is made here. */
struct rsfu_getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t min_wait_usec;
    uint64_t ts;
};

int rsfu_ring_has_min_wait(struct io_uring *ring) { return (ring->features & (1U << 15)) != 0; }

int rsfu_submit_and_wait_min(struct io_uring *ring, unsigned wait_nr, struct __kernel_timespec *ts, unsigned min_wait_usec) {
    /* What io_uring_submit does first: publish the queued SQEs. */
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    unsigned to_submit = tail - io_uring_smp_load_acquire(sq->khead);
    struct rsfu_getevents_arg arg = {
        .sigmask = 0, .sigmask_sz = 0, .min_wait_usec = min_wait_usec, .ts = (uint64_t)(uintptr_t)ts,
    };
    long r = syscall(__NR_io_uring_enter, ring->ring_fd, to_submit, wait_nr,
                     IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
    return r < 0 ? -errno : (int)r;
}
