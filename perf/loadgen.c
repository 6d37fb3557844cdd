/* loadgen: the small load generator of perf/bench.py, for what wrk and
 * iperf3 do not cover. One thread, one epoll loop, bounded in time.
 *
 *   loadgen connect HOST PORT -c CONC -d SECONDS   connect, read to EOF, close
 *   loadgen tls     HOST PORT -c CONC -d SECONDS   connect, full TLS handshake, close
 *   loadgen udp     HOST PORT -c CONC -d SECONDS [-s SIZE]
 *                                                  CONC sockets, each one datagram in flight
 *   loadgen idle    HOST PORT -c CONC -d SECONDS [-r REQUEST]
 *                                                  open CONC connections (send REQUEST and read
 *                                                  its answer on each), print "ready N", hold them
 *   loadgen udpecho HOST PORT -d SECONDS           UDP echo server (a backend)
 *
 * Prints one JSON object on stdout: ops, errors, elapsed, p50_us, p99_us.
 * Latency is per operation (connection, handshake, datagram round trip),
 * recorded in a 1 us histogram up to 1 s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HIST_MAX 1000000 /* us */

static uint32_t *hist;
static uint64_t ops, errors;
static volatile sig_atomic_t stop_flag;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void record(double start) {
    double us = (now() - start) * 1e6;
    uint32_t b = us < 0 ? 0 : (us >= HIST_MAX ? HIST_MAX : (uint32_t)us);
    hist[b]++;
    ops++;
}

static double percentile(double p) {
    uint64_t total = 0, seen = 0, want;
    for (uint32_t i = 0; i <= HIST_MAX; i++) total += hist[i];
    if (total == 0) return 0;
    want = (uint64_t)(p * total);
    if (want >= total) want = total - 1;
    for (uint32_t i = 0; i <= HIST_MAX; i++) {
        seen += hist[i];
        if (seen > want) return i + 0.5;
    }
    return HIST_MAX;
}

static void on_signal(int sig) { (void)sig; stop_flag = 1; }

enum { ST_CONNECTING, ST_READING, ST_HANDSHAKE, ST_IDLE };

struct slot {
    int fd;
    int state;
    double start;
    SSL *ssl;
    size_t sent; /* idle mode: bytes of the request written */
    int retries; /* idle mode: reopen attempts after a failure */
};

static struct sockaddr_in target;
static int epfd;
static SSL_CTX *ssl_ctx;

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int open_tcp(struct slot *s) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) return -1; /* EMFILE and friends: caller counts an error */
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->start = now();
    s->state = ST_CONNECTING;
    s->sent = 0;
    if (connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = s};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) die("epoll_ctl");
    return 0;
}

static void close_slot(struct slot *s) {
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) close(s->fd); /* close also removes it from epoll */
    s->fd = -1;
}

static void want(struct slot *s, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = s};
    epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

/* restart a slot until it succeeds or time is up; a failed open counts as an error */
static void restart(struct slot *s, int keep_going) {
    close_slot(s);
    while (keep_going && !stop_flag && open_tcp(s) < 0) {
        errors++;
        usleep(1000);
    }
}

static int connected_ok(struct slot *s) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    return err == 0;
}

/* one event on a slot in connect / tls mode; returns 1 when the slot is done */
static void step_stream(struct slot *s, uint32_t events, int tls) {
    char buf[4096];
    if (s->state == ST_CONNECTING) {
        if (!connected_ok(s)) {
            errors++;
            restart(s, 1);
            return;
        }
        if (tls) {
            s->ssl = SSL_new(ssl_ctx);
            SSL_set_fd(s->ssl, s->fd);
            SSL_set_connect_state(s->ssl);
            s->state = ST_HANDSHAKE;
        } else {
            s->state = ST_READING;
            want(s, EPOLLIN);
            if (!(events & EPOLLIN)) return;
        }
    }
    if (s->state == ST_HANDSHAKE) {
        int r = SSL_do_handshake(s->ssl);
        if (r == 1) {
            record(s->start);
            restart(s, 1);
            return;
        }
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ) want(s, EPOLLIN);
        else if (e == SSL_ERROR_WANT_WRITE) want(s, EPOLLOUT);
        else {
            errors++;
            ERR_clear_error();
            restart(s, 1);
        }
        return;
    }
    if (s->state == ST_READING) {
        for (;;) {
            ssize_t n = read(s->fd, buf, sizeof buf);
            if (n > 0) continue;
            if (n == 0) { /* peer closed after its answer: one connection done */
                record(s->start);
                restart(s, 1);
            } else if (errno != EAGAIN) {
                errors++;
                restart(s, 1);
            }
            return;
        }
    }
}

static int run_stream(int conc, double duration, int tls) {
    struct slot *slots = calloc(conc, sizeof *slots);
    struct epoll_event evs[256];
    double end = now() + duration;
    for (int i = 0; i < conc; i++) {
        slots[i].fd = -1;
        restart(&slots[i], 1);
    }
    while (!stop_flag && now() < end) {
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) step_stream(evs[i].data.ptr, evs[i].events, tls);
    }
    stop_flag = 1;
    for (int i = 0; i < conc; i++) close_slot(&slots[i]);
    return 0;
}

static int run_udp(int conc, double duration, int size) {
    struct slot *slots = calloc(conc, sizeof *slots);
    struct epoll_event evs[256];
    char *msg = malloc(size), buf[65536];
    memset(msg, 'u', size);
    double end = now() + duration, last_check = now();
    for (int i = 0; i < conc; i++) {
        struct slot *s = &slots[i];
        s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&target, sizeof target) < 0) die("udp socket");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev);
        s->start = now();
        send(s->fd, msg, size, 0);
    }
    while (!stop_flag && now() < end) {
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            while (recv(s->fd, buf, sizeof buf, 0) >= 0) {
                record(s->start);
                s->start = now();
                send(s->fd, msg, size, 0);
            }
        }
        double t = now();
        if (t - last_check > 0.05) { /* a datagram lost for 200 ms counts as an error and is resent */
            last_check = t;
            for (int i = 0; i < conc; i++) {
                if (t - slots[i].start > 0.2) {
                    errors++;
                    slots[i].start = t;
                    send(slots[i].fd, msg, size, 0);
                }
            }
        }
    }
    for (int i = 0; i < conc; i++) close(slots[i].fd);
    return 0;
}

/* idle: open conc connections with at most 256 connects in flight, each sends
 * `request` (if any) and reads one answer, then stays open until time is up */
static int run_idle(int conc, double duration, const char *request) {
    struct slot *slots = calloc(conc, sizeof *slots);
    struct epoll_event evs[256];
    char buf[65536];
    size_t reqlen = request ? strlen(request) : 0;
    int opened = 0, pending = 0, ready = 0, announced = 0, nretry = 0;
    double end = now() + duration;
    while (!stop_flag && now() < end) {
        while (opened < conc && pending < 256) {
            struct slot *s = &slots[opened++];
            if (open_tcp(s) < 0) {
                errors++;
                s->fd = -1;
                continue;
            }
            pending++;
        }
        for (int i = 0; i < opened && pending < 256 && nretry > 0; i++) {
            struct slot *s = &slots[i]; /* a failed connection is tried again, 3 times at most */
            if (s->fd < 0 && s->retries > 0 && s->retries <= 3 && open_tcp(s) == 0) {
                pending++;
                nretry--;
            }
        }
        int n = epoll_wait(epfd, evs, 256, 50);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            if (s->state == ST_CONNECTING) {
                if (!connected_ok(s)) {
                    errors++; pending--; close_slot(s);
                    if (++s->retries <= 3) nretry++;
                    continue;
                }
                s->state = ST_READING;
                if (reqlen == 0) {
                    want(s, EPOLLRDHUP);
                    s->state = ST_IDLE; pending--; ready++; record(s->start);
                    continue;
                }
                want(s, EPOLLIN);
            }
            if (s->state == ST_READING) {
                if (s->sent < reqlen) {
                    ssize_t w = write(s->fd, request + s->sent, reqlen - s->sent);
                    if (w > 0) s->sent += w;
                    continue;
                }
                ssize_t r = read(s->fd, buf, sizeof buf);
                if (r > 0) {
                    want(s, EPOLLRDHUP);
                    s->state = ST_IDLE; pending--; ready++; record(s->start);
                } else if (r == 0 || errno != EAGAIN) {
                    errors++; pending--; close_slot(s);
                    if (++s->retries <= 3) nretry++;
                }
                continue;
            }
            if (s->state == ST_IDLE && (evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                errors++; ready--; close_slot(s); /* the proxy dropped an idle connection */
            }
        }
        if (!announced && opened == conc && pending == 0 && nretry == 0) {
            printf("ready %d\n", ready);
            fflush(stdout);
            announced = 1;
        }
    }
    for (int i = 0; i < opened; i++) close_slot(&slots[i]);
    ops = ready;
    return 0;
}

static int run_udpecho(double duration) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    char buf[65536];
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&target, sizeof target) < 0) die("bind");
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    double end = now() + duration;
    while (!stop_flag && now() < end) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
        if (n < 0) continue; /* EAGAIN at the receive timeout: check the clock */
        sendto(fd, buf, n, 0, (struct sockaddr *)&peer, plen);
        ops++;
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: loadgen connect|tls|udp|idle|udpecho HOST PORT [-c CONC] [-d SECONDS] [-s SIZE] [-r REQUEST]\n");
        return 2;
    }
    const char *mode = argv[1];
    int conc = 16, size = 64;
    double duration = 5;
    const char *request = NULL;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-c")) conc = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-d")) duration = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) request = argv[i + 1];
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons(atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) die("address");
    hist = calloc(HIST_MAX + 1, sizeof *hist);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");

    double t0 = now();
    int rc;
    if (!strcmp(mode, "connect")) rc = run_stream(conc, duration, 0);
    else if (!strcmp(mode, "tls")) {
        ssl_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
        /* every handshake full: no session cache, no tickets offered back */
        SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_ciphersuites(ssl_ctx, "TLS_AES_128_GCM_SHA256");
        rc = run_stream(conc, duration, 1);
    } else if (!strcmp(mode, "udp")) rc = run_udp(conc, duration, size);
    else if (!strcmp(mode, "idle")) rc = run_idle(conc, duration, request);
    else if (!strcmp(mode, "udpecho")) rc = run_udpecho(duration);
    else {
        fprintf(stderr, "loadgen: unknown mode %s\n", mode);
        return 2;
    }
    double elapsed = now() - t0;
    printf("{\"ops\": %llu, \"errors\": %llu, \"elapsed\": %.4f, \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
           (unsigned long long)ops, (unsigned long long)errors, elapsed, percentile(0.50), percentile(0.99));
    return rc;
}
