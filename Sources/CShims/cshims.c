#define _GNU_SOURCE
#include <spawn.h>
#include "cshims.h"
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/tcp.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <time.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>

cp_heap cp_heap_info(void) {
    struct mallinfo2 m = mallinfo2();
    cp_heap h = { m.arena, m.hblkhd, m.uordblks, m.fordblks };
    return h;
}

int cp_tcp_info_of(int fd, cp_tcp_info *out) {
    struct tcp_info info;
    socklen_t len = sizeof(info);
    memset(&info, 0, sizeof(info));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return -1;
    out->state = info.tcpi_state;
    out->bytes_acked = info.tcpi_bytes_acked;
    out->bytes_received = info.tcpi_bytes_received;
    return 0;
}


double cp_monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


static volatile sig_atomic_t caught_signal = 0;
static volatile sig_atomic_t signal_wake_fd = -1;

static volatile sig_atomic_t stop_requests = 0;

static void on_signal(int sig) {
    int saved = errno;
    // A second SIGINT/SIGTERM stops at once, as if none were caught: the first one waits
    // for the current cycle, which a broker that never answers can hold for long.
    if ((sig == SIGINT || sig == SIGTERM) && stop_requests++ > 0) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    caught_signal = sig;
    if (signal_wake_fd >= 0) {
        char b = (char)sig;
        ssize_t ignored = write(signal_wake_fd, &b, 1);
        (void)ignored;
    }
    errno = saved;
}

int cp_catch_signals(const int *sigs, int count, int wake_fd) {
    signal_wake_fd = wake_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < count; i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) return -errno;
    }
    sigset_t unblock;
    sigemptyset(&unblock);
    for (int i = 0; i < count; i++) sigaddset(&unblock, sigs[i]);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return 0;
}

int cp_caught_signal(void) { return caught_signal; }

static volatile sig_atomic_t resized = 0;
static volatile sig_atomic_t resize_wake_fd = -1;

static void on_resize(int sig) {
    (void)sig;
    int saved = errno;
    resized = 1;
    if (resize_wake_fd >= 0) {
        char b = 'W';
        ssize_t ignored = write(resize_wake_fd, &b, 1);
        (void)ignored;
    }
    errno = saved;
}

int cp_catch_resize(int wake_fd) {
    resize_wake_fd = wake_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_resize;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGWINCH, &sa, NULL) != 0) return -errno;
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGWINCH);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    return 0;
}

int cp_take_resize(int fd, int *rows, int *cols) {
    if (!resized) return 0;
    resized = 0;
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return 0;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
    return 1;
}

static void fill_socket(cp_tcp_socket *s, const struct inet_diag_msg *m) {
    memset(s, 0, sizeof(*s));
    s->family = m->idiag_family;
    s->state = m->idiag_state;
    s->timer = m->idiag_timer;
    s->local_port = ntohs(m->id.idiag_sport);
    s->remote_port = ntohs(m->id.idiag_dport);
    memcpy(s->local_addr, m->id.idiag_src, 16);
    memcpy(s->remote_addr, m->id.idiag_dst, 16);
    s->expires_ms = m->idiag_expires;
    s->rqueue = m->idiag_rqueue;
    s->wqueue = m->idiag_wqueue;
    s->uid = m->idiag_uid;
    s->inode = m->idiag_inode;
}

int cp_tcp_dump(int family, uint32_t states, void (*each)(const cp_tcp_socket *s, void *context), void *context) {
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -errno;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } request;
    memset(&request, 0, sizeof(request));
    request.nlh.nlmsg_len = sizeof(request);
    request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.nlh.nlmsg_seq = 1;
    request.req.sdiag_family = (uint8_t)family;
    request.req.sdiag_protocol = IPPROTO_TCP;
    request.req.idiag_states = states;
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    if (sendto(fd, &request, sizeof(request), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        int e = errno; close(fd); return -e;
    }
    static __thread char buffer[65536];
    for (;;) {
        ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n < 0) { if (errno == EINTR) continue; int e = errno; close(fd); return -e; }
        if (n == 0) break;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) { close(fd); return 0; }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = (struct nlmsgerr *)NLMSG_DATA(h);
                close(fd);
                return err->error ? err->error : -EIO;
            }
            if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
            cp_tcp_socket s;
            fill_socket(&s, (struct inet_diag_msg *)NLMSG_DATA(h));
            each(&s, context);
        }
    }
    close(fd);
    return 0;
}

/* Requests go out in batches of LOOKUP_BATCH (one sendto); each one gets exactly one reply,
 * the socket or an NLMSG_ERROR (ENOENT when the kernel holds no such socket). */
#define LOOKUP_BATCH 64

int cp_tcp_lookup(const cp_tcp_key *keys, int count, cp_tcp_socket *out, uint8_t *found) {
    if (count <= 0) return 0;
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return -errno;
    struct request {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } requests[LOOKUP_BATCH];
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    static __thread char buffer[8192];
    for (int first = 0; first < count; first += LOOKUP_BATCH) {
        int n = count - first < LOOKUP_BATCH ? count - first : LOOKUP_BATCH;
        memset(requests, 0, sizeof(struct request) * (size_t)n);
        for (int i = 0; i < n; i++) {
            const cp_tcp_key *k = &keys[first + i];
            struct request *r = &requests[i];
            r->nlh.nlmsg_len = sizeof(struct request);
            r->nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
            r->nlh.nlmsg_flags = NLM_F_REQUEST;
            r->nlh.nlmsg_seq = (uint32_t)(first + i + 1);
            r->req.sdiag_family = k->family;
            r->req.sdiag_protocol = IPPROTO_TCP;
            r->req.idiag_states = 0xFFF;
            r->req.id.idiag_sport = htons(k->local_port);
            r->req.id.idiag_dport = htons(k->remote_port);
            memcpy(r->req.id.idiag_src, k->local_addr, 16);
            memcpy(r->req.id.idiag_dst, k->remote_addr, 16);
            r->req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
            r->req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
            found[first + i] = 0;
        }
        if (sendto(fd, requests, sizeof(struct request) * (size_t)n, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
            int e = errno; close(fd); return -e;
        }
        for (int replies = 0; replies < n;) {
            ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
            if (got < 0) { if (errno == EINTR) continue; int e = errno; close(fd); return -e; }
            if (got == 0) { close(fd); return -EIO; }
            for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (unsigned)got); h = NLMSG_NEXT(h, got)) {
                int index = (int)h->nlmsg_seq - 1;
                if (index < first || index >= first + n) continue;
                replies++;
                if (h->nlmsg_type == NLMSG_ERROR) {
                    struct nlmsgerr *err = (struct nlmsgerr *)NLMSG_DATA(h);
                    if (err->error != -ENOENT) { close(fd); return err->error ? err->error : -EIO; }
                } else if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
                    fill_socket(&out[index], (struct inet_diag_msg *)NLMSG_DATA(h));
                    found[index] = 1;
                }
            }
        }
    }
    close(fd);
    return 0;
}

int cp_spawn_close_from(void *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
}

#include <sys/syscall.h>
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

int cp_pidfd_open(int pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int cp_pidfd_getfd(int pidfd, int fd) {
    long dup = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    return dup < 0 ? -errno : (int)dup;
}

#include <fcntl.h>
#include <stdlib.h>

int cp_open_pty(char *name, int size) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return -errno;
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, (size_t)size) != 0) {
        int e = errno;
        close(master);
        return -e;
    }
    return master;
}
