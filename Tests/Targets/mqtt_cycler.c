// A C MQTT client on libmosquitto for mshmon's target tests: one process, cycle after cycle
// (connect, publish one QoS 1 message, disconnect), with a leak on request.
//   mqtt_cycler HOST PORT MODE [PAUSE_MS]
//   clean        every cycle releases what it took
//   leak-socket  each cycle opens a new connection without closing the last; the broker's
//                takeover (same client id) closes the old one from its side: CLOSE_WAIT piles up
//   leak-heap    each cycle leaks 2 x 20 B from mqtt_clean_session
//   leak-thread  each cycle starts a thread named leaky-worker that never ends
// Runs until killed.
#define _GNU_SOURCE
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void *worker(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static struct mosquitto *connect_one(const char *host, int port) {
    struct mosquitto *m = mosquitto_new("mshmon-test-cycler", true, NULL);
    if (!m) { perror("mosquitto_new"); exit(1); }
    if (mosquitto_connect(m, host, port, 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "cannot connect to %s:%d\n", host, port);
        mosquitto_destroy(m);
        return NULL;
    }
    for (int i = 0; i < 5; i++) mosquitto_loop(m, 10, 1);  // CONNACK
    return m;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s HOST PORT MODE [PAUSE_MS]\n", argv[0]); return 2; }
    const char *host = argv[1], *mode = argv[3];
    int port = atoi(argv[2]);
    int pause_ms = argc > 4 ? atoi(argv[4]) : 20;
    setvbuf(stdout, NULL, _IOLBF, 0);
    mosquitto_lib_init();
    struct mosquitto *previous = NULL;
    for (int cycle = 1;; cycle++) {
        struct mosquitto *m = connect_one(host, port);
        if (!m) { usleep(200 * 1000); continue; }
        int mid;
        mosquitto_publish(m, &mid, "mshmon/test/up", 5, "hello", 1, false);
        for (int i = 0; i < 5; i++) mosquitto_loop(m, 10, 1);  // PUBACK
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
        if (strcmp(mode, "leak-thread") == 0) {
            pthread_t t;
            if (pthread_create(&t, NULL, worker, NULL) == 0) pthread_setname_np(t, "leaky-worker");
        }
        printf("cycle %d done\n", cycle);
        usleep(pause_ms * 1000);
    }
}
