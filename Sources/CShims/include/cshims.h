// What Swift cannot import from C: mallinfo2 (malloc.h), the kernel's full struct tcp_info
// (glibc's is shorter and lacks the byte counters), and a signal handler
// (Swift cannot write an async-signal-safe one).
#ifndef CSHIMS_H
#define CSHIMS_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t arena;     /* non-mmapped space allocated from the system */
    size_t hblkhd;    /* space in mmapped regions */
    size_t uordblks;  /* total allocated space */
    size_t fordblks;  /* total free space */
} cp_heap;

/// mallinfo2() of glibc, four fields of it. Cost grows with the number of free chunks.
cp_heap cp_heap_info(void);

typedef struct {
    uint8_t state;
    uint64_t bytes_acked;
    uint64_t bytes_received;
} cp_tcp_info;

/// TCP_INFO of socket fd; returns 0 on success, -1 (errno set) when fd is not a TCP socket.
int cp_tcp_info_of(int fd, cp_tcp_info *out);

/// One TCP socket from a NETLINK_SOCK_DIAG dump (addresses in network byte order).
typedef struct {
    uint8_t family;      /* AF_INET or AF_INET6 */
    uint8_t state;       /* kernel TCP state code, 1..11 */
    uint8_t timer;
    uint16_t local_port; /* host byte order */
    uint16_t remote_port;
    uint8_t local_addr[16];
    uint8_t remote_addr[16];
    uint32_t expires_ms;
    uint32_t rqueue;
    uint32_t wqueue;
    uint32_t uid;
    uint32_t inode;
} cp_tcp_socket;

/// Dumps the TCP sockets of `family` (AF_INET or AF_INET6) whose state's bit (1 << TCP_*) is
/// set in `states` (0xFFF: every state) through NETLINK_SOCK_DIAG, calling `each` per socket.
/// Returns 0, or -errno when the dump could not be made.
int cp_tcp_dump(int family, uint32_t states, void (*each)(const cp_tcp_socket *s, void *context), void *context);

/// A TCP 4-tuple to look up (addresses in network byte order, IPv4 in the first 4 bytes).
typedef struct {
    uint8_t family;      /* AF_INET or AF_INET6 */
    uint16_t local_port; /* host byte order */
    uint16_t remote_port;
    uint8_t local_addr[16];
    uint8_t remote_addr[16];
} cp_tcp_key;

/// Exact NETLINK_SOCK_DIAG lookups, one per key (far cheaper than a dump, which walks the
/// kernel's whole established hash): found[i] is 1 and out[i] filled when
/// the kernel holds a TCP socket with that 4-tuple in any state, TIME_WAIT included, else 0.
/// Returns 0, or -errno when the lookups could not be made.
int cp_tcp_lookup(const cp_tcp_key *keys, int count, cp_tcp_socket *out, uint8_t *found);


/* Seconds on the monotonic clock (for durations and deadlines). */
double cp_monotonic_seconds(void);

/// Catches each of `sigs` with one sigaction handler (SA_RESTART) that records the signal and,
/// when `wake_fd` >= 0, writes one byte to it. Process-wide and async-signal-safe: unlike a
/// signal DispatchSource, it does not depend on which thread the kernel picks, nor on a
/// disposition inherited from the shell (`cmd &` starts with SIGINT ignored). Returns 0 or -errno.
int cp_catch_signals(const int *sigs, int count, int wake_fd);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+; hidden from Swift without
/// _GNU_SOURCE): the child closes every fd from `from` up. `actions` is a
/// posix_spawn_file_actions_t *. Returns 0 or an errno.
int cp_spawn_close_from(void *actions, int from);

/// The last signal cp_catch_signals caught, 0 if none yet.
int cp_caught_signal(void);

/// Catches SIGWINCH (replacing curses' own handler): records it and writes one byte to
/// `wake_fd`. The kernel may deliver it to any thread; the byte wakes the terminal thread's
/// poll wherever it lands. Returns 0 or -errno.
int cp_catch_resize(int wake_fd);

/// 1 and the terminal's size (TIOCGWINSZ on `fd`) when a SIGWINCH came since the last call, else 0.
int cp_take_resize(int fd, int *rows, int *cols);
#endif

/// pidfd_open(2): a pidfd for `pid` (close-on-exec), or -errno.
int cp_pidfd_open(int pid);

/// pidfd_getfd(2): a duplicate, in this process, of fd `fd` of the process `pidfd` refers to
/// (close-on-exec), or -errno (EPERM where ptrace would be refused: kernel.yama.ptrace_scope).
int cp_pidfd_getfd(int pidfd, int fd);

/// A pseudo-terminal's master side (close-on-exec, not our controlling terminal), granted and
/// unlocked, with the other side's path in `name`; -errno on failure.
int cp_open_pty(char *name, int size);
