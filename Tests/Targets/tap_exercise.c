// Drives the heap tap for ProbesTests/HeapTapTests: each mode ends with a known number of
// live blocks and bytes at call sites in functions named for the mode, writes "ready" on
// stdout (when it has one) and waits to be killed, so the test can read the table.
//   tap_exercise script | threads | fork-exec | close-fds
//   tap_exercise bench N   N malloc/free/realloc operations on one thread, timed (for scripts/bench-target)
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *volatile keep[4096];
volatile int nkeep;

static void ready(void) {
    (void)!write(1, "ready\n", 6);
    for (;;) pause();
}

// Every interposed call once; left live: 300 + 40 + 50 + 512 + 33 + 10 + 4096 B in 7 blocks.
__attribute__((noinline)) void scripted(void) {
    void *a = malloc(100);
    void *b = calloc(10, 10);
    void *c = realloc(a, 300);
    void *d = reallocarray(NULL, 5, 8);
    void *e = NULL;
    if (posix_memalign(&e, 64, 50) != 0 || ((uintptr_t)e & 63)) _exit(3);
    void *f = aligned_alloc(256, 512);
    void *g = memalign(128, 33);
    void *h = valloc(10);
    void *i = pvalloc(10);
    if (((uintptr_t)f & 255) || ((uintptr_t)g & 127) || ((uintptr_t)h & 4095) || ((uintptr_t)i & 4095)) _exit(4);
    if (malloc_usable_size(c) < 300 || malloc_usable_size(e) < 50 || malloc_usable_size(i) < 4096) _exit(5);
    memset(c, 1, 300); memset(e, 1, 50); memset(f, 1, 512); memset(i, 1, 4096);
    free(b);
    void *z = malloc(0);  // malloc(0) then free: nothing left
    free(z);
    void *gone = realloc(malloc(8), 0);  // realloc to 0 frees
    (void)gone;
    keep[0] = c; keep[1] = d; keep[2] = e; keep[3] = f; keep[4] = g; keep[5] = h; keep[6] = i;
}

// 1,000,000 mixed operations; left live: 100 blocks of 24 B per thread.
__attribute__((noinline)) void *thread_worker(void *arg) {
    uint64_t x = (uint64_t)(uintptr_t)arg * 2654435761u + 1;
    void *slots[256] = {0};
    for (int op = 0; op < 1000000; op++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int s = (int)(x % 256);
        switch ((x >> 8) % 4) {
        case 0: free(slots[s]); slots[s] = malloc((x >> 16) % 512); break;
        case 1: free(slots[s]); slots[s] = calloc(1 + (x >> 16) % 8, 16); break;
        case 2: slots[s] = realloc(slots[s], 1 + (x >> 16) % 1024); break;
        default: free(slots[s]); slots[s] = NULL; break;
        }
    }
    for (int s = 0; s < 256; s++) free(slots[s]);
    void **kept = (void **)arg;
    for (int k = 0; k < 100; k++) kept[k] = malloc(24);
    return NULL;
}

__attribute__((noinline)) void parent_work(int n) {
    for (int k = 0; k < n; k++) keep[nkeep++] = malloc(16);
}

__attribute__((noinline)) void child_work(int n) {
    for (int k = 0; k < n; k++) keep[nkeep++ % 4096] = malloc(16);
}

__attribute__((noinline)) void after_close(void) {
    for (int k = 0; k < 3; k++) keep[nkeep++] = malloc(64);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "script")) {
        scripted();
        ready();
    } else if (!strcmp(mode, "threads")) {
        pthread_t t[8];
        static void *kept[8][100];
        for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, thread_worker, kept[i]);
        for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
        ready();
    } else if (!strcmp(mode, "fork-exec")) {
        parent_work(10);
        pid_t p = fork();
        if (p == 0) { child_work(1000); _exit(0); }
        waitpid(p, NULL, 0);
        p = fork();
        if (p == 0) { execl(argv[0], argv[0], "child-exec", (char *)NULL); _exit(127); }
        int status = 0;
        waitpid(p, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) _exit(6);
        parent_work(5);
        ready();
    } else if (!strcmp(mode, "child-exec")) {
        child_work(1000);  // the exec'd program finds the table taken: counted privately
        return 0;
    } else if (!strcmp(mode, "bench")) {
        long n = argc > 2 ? atol(argv[2]) : 20000000;
        void *slots[1024] = {0};
        uint64_t x = 88172645463325252ULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long op = 0; op < n; op++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            int s = (int)(x & 1023);
            if ((x >> 10) & 3) { free(slots[s]); slots[s] = malloc(16 + (x >> 20) % 240); }
            else slots[s] = realloc(slots[s], 16 + (x >> 20) % 480);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        for (int s = 0; s < 1024; s++) free(slots[s]);
        double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        char line[64];
        int len = snprintf(line, sizeof line, "ns_per_op %.2f\n", secs * 1e9 / n);
        (void)!write(1, line, len);
        return 0;
    } else if (!strcmp(mode, "close-fds")) {
        for (int fd = 0; fd < 1024; fd++) close(fd);
        after_close();
        for (;;) pause();
    }
    return 2;
}
