// C glue for RingSFU: only what Swift cannot reach directly (macros,
// CPU-set manipulation, cmsg walking). liburing's static inline helpers are
// imported into Swift as they are.
#ifndef RINGSFU_CSHIMS_H
#define RINGSFU_CSHIMS_H

// System headers first: liburing.h defines _XOPEN_SOURCE, which would
// otherwise give fd_set a layout that differs from Swift's Glibc module.
#include <sys/types.h>
#include <sys/select.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sched.h>
#include <time.h>
#include <errno.h>
#include <stdint.h>
#include <liburing.h>
#include <srtp2/srtp.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int rsfu_pin_current_thread(int cpu);

/// CPU time consumed so far by the given thread, in nanoseconds (-1 on error).
int64_t rsfu_thread_cpu_ns(pthread_t thread);
/// SCTP associations for data channels (usrsctp without threads; see sctp.c).
/// Callbacks name the association by the id given at creation.
typedef void (*rsfu_sctp_output_fn)(uintptr_t id, const void *data, size_t len);
typedef void (*rsfu_sctp_message_fn)(uintptr_t id, uint16_t sid, uint32_t ppid, const void *data, size_t len);
typedef void (*rsfu_sctp_event_fn)(uintptr_t id, int kind, int value);
enum { RSFU_SCTP_CONNECTED = 1, RSFU_SCTP_FAILED = 2, RSFU_SCTP_CLOSED = 3, RSFU_SCTP_STREAM_RESET = 4, RSFU_SCTP_SEND_SPACE = 5 };
struct rsfu_sctp;
int rsfu_sctp_global_init(rsfu_sctp_output_fn output, rsfu_sctp_message_fn message, rsfu_sctp_event_fn event);
void rsfu_sctp_handle_timers(uint32_t elapsed_ms);
struct rsfu_sctp *rsfu_sctp_create(uintptr_t id, uint16_t os, uint16_t mis, uint32_t send_buffer, uint32_t max_message);
int rsfu_sctp_connect(struct rsfu_sctp *s, uint16_t remote_port);
void rsfu_sctp_input(struct rsfu_sctp *s, const void *data, size_t len);
/// 0 when queued, else -errno (-EWOULDBLOCK: the send buffer is full).
int rsfu_sctp_send(struct rsfu_sctp *s, uint16_t sid, uint32_t ppid, int ordered,
                   int max_retransmits, int max_lifetime_ms, const void *data, size_t len);
int rsfu_sctp_reset_stream(struct rsfu_sctp *s, uint16_t sid);
void rsfu_sctp_close(struct rsfu_sctp *s);

/// libFuzzer's driver, present only in binaries built with
/// -sanitize=fuzzer (the parser fuzzer, scripts/fuzz.sh).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
/// getrusage(RUSAGE_THREAD): the calling thread's resource usage.
int rsfu_thread_rusage(struct rusage *out);

/// CPU time of the calling thread, in nanoseconds.
int64_t rsfu_self_cpu_ns(void);

/// Monotonic clock in nanoseconds.
int64_t rsfu_monotonic_ns(void);
uint64_t rsfu_ntp_now(void);
int rsfu_capture_stack(void **out, int max);
const char *rsfu_symbol_name(void *address);
uintptr_t rsfu_symbol_offset(void *address);

/// Writes a UDP_SEGMENT control message into `buf` (which must hold
/// rsfu_gso_cmsg_space() bytes) and returns the control length to use.
size_t rsfu_write_gso_cmsg(void *buf, uint16_t segment_size);
size_t rsfu_gso_cmsg_space(void);

/// mmsghdr without _GNU_SOURCE in Swift's view of the headers (same layout).
struct rsfu_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};
int rsfu_recvmmsg(int fd, struct rsfu_mmsghdr *msgs, unsigned int n, int flags);
int rsfu_sendmmsg(int fd, struct rsfu_mmsghdr *msgs, unsigned int n, int flags);
int rsfu_msg_waitforone(void);

/// Space for the control messages a receive may carry (SO_RXQ_OVFL).
size_t rsfu_receive_cmsg_space(void);
/// Asks the kernel to report the socket's cumulative drop count with each datagram.
int rsfu_enable_rxq_ovfl(int fd);
/// The SO_RXQ_OVFL drop count attached to a multishot-received datagram,
/// or -1 when there is none.
int64_t rsfu_rxq_ovfl(struct io_uring_recvmsg_out *out, struct msghdr *msgh);

/// srtp_init() once per process (idempotent). Returns 0 or a libsrtp status.
int rsfu_srtp_init(void);
/// Installs (1) or removes (0) the OpenSSL-backed AES-ICM, AES-GCM and
/// HMAC-SHA1 types; each passes libsrtp's self-test with the stock vectors
/// first. Sessions keep the types they were created with. 0 on success.
int rsfu_srtp_use_openssl(int on);

/// HMAC-SHA1 computed on the stack (no allocation).
void rsfu_hmac_sha1(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len, uint8_t out[20]);
/// The same over two consecutive parts.
void rsfu_hmac_sha1_2(const uint8_t *key, size_t key_len, const uint8_t *part1, size_t len1,
                      const uint8_t *part2, size_t len2, uint8_t out[20]);

/// DTLS 1.2 over memory BIOs (see dtls.c).
typedef struct rsfu_dtls_ctx rsfu_dtls_ctx;
typedef struct rsfu_dtls rsfu_dtls;
/// A context with an ECDSA P-256 self-signed certificate, or the given PEM files.
rsfu_dtls_ctx *rsfu_dtls_ctx_new(const char *cert_pem_path, const char *key_pem_path);
void rsfu_dtls_ctx_free(rsfu_dtls_ctx *c);
/// "AB:CD:..." fingerprint of our certificate for "sha-1".."sha-512"; 0 on success.
int rsfu_dtls_ctx_fingerprint(rsfu_dtls_ctx *c, const char *alg, char *out, size_t cap);
rsfu_dtls *rsfu_dtls_new(rsfu_dtls_ctx *c, int is_client, int mtu);
void rsfu_dtls_free(rsfu_dtls *d);
/// Starts (client: produces the first flight). 1 done, 0 in progress, -1 failed.
int rsfu_dtls_start(rsfu_dtls *d);
/// Feeds received records. 1 done, 0 in progress, -1 failed, -2 peer closed.
int rsfu_dtls_feed(rsfu_dtls *d, const uint8_t *data, size_t len);
/// Takes pending output (records to send), 0 when none.
/// Application data (SCTP packets) after the handshake: one record's bytes,
/// 0 when none is left, -2 when the peer closed.
int rsfu_dtls_read(rsfu_dtls *d, uint8_t *buf, size_t cap);
/// Sends application data as one record (take it with rsfu_dtls_take_output).
int rsfu_dtls_write(rsfu_dtls *d, const uint8_t *data, size_t len);
size_t rsfu_dtls_take_output(rsfu_dtls *d, uint8_t *buf, size_t cap);
/// Queues a close_notify alert on a connected session (take it with
/// rsfu_dtls_take_output); nothing on a session that never connected.
void rsfu_dtls_close(rsfu_dtls *d);
/// Milliseconds until the retransmission timer fires, -1 if none.
long rsfu_dtls_timeout_ms(rsfu_dtls *d);
int rsfu_dtls_handle_timeout(rsfu_dtls *d);
/// Replaces OpenSSL's retransmission backoff (1 s, doubling to 60 s): `next`
/// gets the previous timeout in microseconds (0 for the first) and returns
/// the next one.
void rsfu_dtls_set_backoff(rsfu_dtls *d, unsigned int (*next)(void *ssl, unsigned int previous_us));
int rsfu_dtls_peer_fingerprint(rsfu_dtls *d, const char *alg, char *out, size_t cap);
/// Negotiated SRTP profile id and keys (key+salt each); -1 if none.
int rsfu_dtls_srtp_keys(rsfu_dtls *d, int is_client, uint8_t *local, uint8_t *remote, size_t *key_salt_len);

/// The current thread's errno.
int rsfu_errno(void);

/// Whether the kernel takes a minimum wait (IORING_FEAT_MIN_TIMEOUT, 6.12).
int rsfu_ring_has_min_wait(struct io_uring *ring);
/// Submits what is queued and waits for `wait_nr` completions, `ts` at the
/// latest (NULL: no limit); with `min_wait_usec`, once that has passed any
/// completion ends the wait. Returns what io_uring_enter returns, or -errno.
int rsfu_submit_and_wait_min(struct io_uring *ring, unsigned wait_nr, struct __kernel_timespec *ts, unsigned min_wait_usec);

/// Flags of the io_uring features this library probes for.
unsigned rsfu_setup_single_issuer(void);
unsigned rsfu_setup_defer_taskrun(void);
unsigned rsfu_setup_coop_taskrun(void);
unsigned rsfu_cqe_f_more(void);
unsigned rsfu_cqe_f_buffer(void);
unsigned rsfu_cqe_buffer_shift(void);
unsigned rsfu_sqe_buffer_select(void);

#endif
