#include "cshims.h"
#include <sys/prctl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/tcp.h>
#include <string.h>

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

size_t cp_usable_size(void *p) { return malloc_usable_size(p); }

int cp_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0); }
