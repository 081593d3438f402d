// A C MQTT client on libmosquitto for mshmon's target tests: one process, cycle after cycle
// (connect, publish one QoS 1 message, disconnect), with a leak on request.
//   mqtt_cycler HOST PORT MODE [PAUSE_MS [CYCLES]]
//   clean        every cycle releases what it took
//   leak-socket  each cycle opens a new connection without closing the last; the broker's
//                takeover (same client id) closes the old one from its side: CLOSE_WAIT piles up
//   leak-heap    each cycle leaks 2 x 20 B from mqtt_clean_session
//   leak-thread  each cycle starts a thread named leaky-worker that never ends
//   leak-wrapped each cycle leaks 2 x 20 B from session_store, through the wrapper pool_get
// Runs until killed, or for CYCLES cycles (then prints the cycles per second).
#define _GNU_SOURCE
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// Visible and volatile: the compiler may not elide the allocations kept here.
void *volatile kept[1 << 16];
volatile int nkept;

// The seed's bug (2): cleaning the session frees the ack records but not their handlers.
__attribute__((noinline)) void mqtt_clean_session(void) {
    for (int i = 0; i < 2 && nkept < (int)(sizeof kept / sizeof kept[0]); i++) {
        kept[nkept] = malloc(20);
        memset(kept[nkept], 0x5a, 20);
        nkept++;
    }
}

// An allocation wrapper the tap cannot tell by its name (it does not mention alloc), and not a
// tail call: only --alloc-wrapper pool_get makes the site its caller, session_store.
__attribute__((noinline)) void *pool_get(size_t n) {
    void *p = malloc(n);
    if (p) memset(p, 0xa5, n);  // not 0: malloc + memset 0 would become a tail call of calloc
    return p;
}

__attribute__((noinline)) void session_store(void) {
    for (int i = 0; i < 2 && nkept < (int)(sizeof kept / sizeof kept[0]); i++) kept[nkept++] = pool_get(20);
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static volatile int connacked, pubacked;
static void on_connect(struct mosquitto *m, void *obj, int rc) { (void)m; (void)obj; connacked = rc == 0 ? 1 : -1; }
static void on_publish(struct mosquitto *m, void *obj, int mid) { (void)m; (void)obj; (void)mid; pubacked = 1; }

// Runs the loop until *flag is set (or 2 s pass).
static void until(struct mosquitto *m, volatile int *flag) {
    for (int i = 0; i < 200 && !*flag; i++) mosquitto_loop(m, 10, 1);
}

static struct mosquitto *connect_one(const char *host, int port) {
    struct mosquitto *m = mosquitto_new("mshmon-test-cycler", true, NULL);
    if (!m) { perror("mosquitto_new"); exit(1); }
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    connacked = 0;
    if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        mosquitto_destroy(m);
        return NULL;
    }
    until(m, &connacked);
    return m;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s HOST PORT MODE [PAUSE_MS]\n", argv[0]); return 2; }
    const char *host = argv[1], *mode = argv[3];
    int port = atoi(argv[2]);
    int pause_ms = argc > 4 ? atoi(argv[4]) : 20;
    long cycles = argc > 5 ? atol(argv[5]) : 0;
    // CYCLER_HOLD_MS: stay connected that long each cycle (seen by polling, with another broker).
    int hold_ms = getenv("CYCLER_HOLD_MS") ? atoi(getenv("CYCLER_HOLD_MS")) : 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    setvbuf(stdout, NULL, _IOLBF, 0);
    mosquitto_lib_init();
    struct mosquitto *previous = NULL;
    for (long cycle = 1; cycles == 0 || cycle <= cycles; cycle++) {
        struct mosquitto *m = connect_one(host, port);
        if (!m) { usleep(200 * 1000); continue; }
        int mid;
        pubacked = 0;
        mosquitto_publish(m, &mid, "mshmon/test/up", 5, "hello", 1, false);
        until(m, &pubacked);
        if (hold_ms > 0) usleep(hold_ms * 1000);
        if (strcmp(mode, "leak-socket") == 0) {
            // Abandon the connection: its socket stays open in this process, never closed.
            previous = m;
            (void)previous;
        } else {
            mosquitto_disconnect(m);
            mosquitto_loop(m, 10, 1);
            mosquitto_destroy(m);
        }
        if (strcmp(mode, "leak-heap") == 0) mqtt_clean_session();
        if (strcmp(mode, "leak-wrapped") == 0) session_store();
        if (strcmp(mode, "leak-thread") == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, worker, NULL) == 0) pthread_setname_np(t, "leaky-worker");
        }
        printf("cycle %ld done\n", cycle);
        if (pause_ms > 0) usleep(pause_ms * 1000);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("cycles_per_second %.1f\n", cycles / s);
    return 0;
}
