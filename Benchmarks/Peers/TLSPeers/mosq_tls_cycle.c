/*
 * mosq_tls_cycle.c - ../shared/bench/mosq_cycle.c over TLS: the same cycle on libmosquitto
 * (Debian's libmosquitto-dev) with mosquitto_tls_set(CAFILE), the broker's certificate
 * verified for "localhost". For scripts/bench-tls. Loopback only; every wait is bounded.
 *
 *   mosq_tls_cycle PORT CYCLES reuse|new CAFILE
 *
 * One cycle = TCP connect + CONNECT/CONNACK + SUBSCRIBE 2 topics (QoS 1)/SUBACK
 * + PUBLISH QoS 1 (64 B, to a topic not subscribed)/PUBACK + DISCONNECT + close.
 * reuse: one struct mosquitto for all cycles (mosquitto_connect again);
 * new: mosquitto_new/mosquitto_destroy per cycle.
 * Output: "name: value unit" lines, incl. fd count / VmRSS before and after.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#define MAX_SECONDS 300.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static long rss_kb(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

struct st {
    int connack;     /* -1 until CONNACK */
    int suback_mid;
    int puback_mid;
    bool disconnected;
};

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    (void)m;
    ((struct st *)obj)->connack = rc;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
    (void)m; (void)n; (void)granted;
    ((struct st *)obj)->suback_mid = mid;
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    (void)m;
    ((struct st *)obj)->puback_mid = mid;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    (void)m; (void)rc;
    ((struct st *)obj)->disconnected = true;
}

#define PUMP_UNTIL(cond)                                                   \
    do {                                                                   \
        double dl_ = now_s() + 5;                                          \
        while (!(cond) && now_s() < dl_) {                                 \
            int lrc_ = mosquitto_loop(m, 500, 1);                          \
            if (lrc_ != MOSQ_ERR_SUCCESS && !(cond))                       \
                break;                                                     \
        }                                                                  \
    } while (0)

static const char *cafile;

static struct mosquitto *make(const char *cid, struct st *s)
{
    struct mosquitto *m = mosquitto_new(cid, true, s);
    if (!m)
        return NULL;
    if (mosquitto_tls_set(m, cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS) {
        mosquitto_destroy(m);
        return NULL;
    }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    return m;
}

int main(int argc, char **argv)
{
    char *topics[2] = { "mshmon/bench/a", "mshmon/bench/b" };
    char payload[64], cid[64];
    struct st s;
    struct mosquitto *m = NULL;
    int port, reuse, fd0, fd1, maj, min, rev;
    long cycles, i, ok = 0;
    long rss0, rss1;
    double t0, t1;

    if (argc < 5) {
        fprintf(stderr, "usage: %s PORT CYCLES reuse|new CAFILE\n", argv[0]);
        return 2;
    }
    cafile = argv[4];
    port = atoi(argv[1]);
    cycles = atol(argv[2]);
    reuse = strcmp(argv[3], "new") != 0;
    memset(payload, 'y', sizeof payload);
    snprintf(cid, sizeof cid, "mosq_cyc_%d", (int)getpid());
    mosquitto_lib_init();
    mosquitto_lib_version(&maj, &min, &rev);
    if (reuse && !(m = make(cid, &s))) {
        fprintf(stderr, "mosquitto_new failed\n");
        return 2;
    }
    fd0 = fd_count();
    rss0 = rss_kb();
    t0 = now_s();
    for (i = 0; i < cycles && now_s() - t0 < MAX_SECONDS; i++) {
        int mid_s = -1, mid_p = -1, rc;
        memset(&s, 0, sizeof s);
        s.connack = -1;
        s.suback_mid = s.puback_mid = -1;
        if (!reuse && !(m = make(cid, &s))) {
            fprintf(stderr, "mosquitto_new failed at %ld\n", i);
            break;
        }
        if ((rc = mosquitto_connect(m, "localhost", port, 60)) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "connect rc=%d at %ld\n", rc, i);
            goto next;
        }
        PUMP_UNTIL(s.connack >= 0);
        if (s.connack != 0) {
            fprintf(stderr, "no CONNACK at %ld\n", i);
            goto drop;
        }
        if (mosquitto_subscribe_multiple(m, &mid_s, 2, topics, 1, 0, NULL) != MOSQ_ERR_SUCCESS)
            goto drop;
        PUMP_UNTIL(s.suback_mid == mid_s);
        if (s.suback_mid != mid_s) {
            fprintf(stderr, "no SUBACK at %ld\n", i);
            goto drop;
        }
        if (mosquitto_publish(m, &mid_p, "mshmon/bench/cycle", sizeof payload, payload, 1, false) != MOSQ_ERR_SUCCESS)
            goto drop;
        PUMP_UNTIL(s.puback_mid == mid_p);
        if (s.puback_mid != mid_p) {
            fprintf(stderr, "no PUBACK at %ld\n", i);
            goto drop;
        }
        mosquitto_disconnect(m);
        PUMP_UNTIL(s.disconnected);
        if (s.disconnected)
            ok++;
        goto next;
drop:
        mosquitto_disconnect(m);
        PUMP_UNTIL(s.disconnected);
next:
        if (!reuse) {
            mosquitto_destroy(m);
            m = NULL;
        }
    }
    t1 = now_s();
    fd1 = fd_count();
    rss1 = rss_kb();
    if (m)
        mosquitto_destroy(m);
    mosquitto_lib_cleanup();

    printf("libmosquitto_version: %d.%d.%d\n", maj, min, rev);
    printf("mosq_c_cycles_ok: %ld cycles\n", ok);
    printf("mosq_c_cycles_time: %.3f s\n", t1 - t0);
    printf("mosq_c_cycles_rate: %.1f cycles/s\n", ok / (t1 - t0));
    printf("mosq_c_fd_before: %d fds\n", fd0);
    printf("mosq_c_fd_after: %d fds\n", fd1);
    printf("mosq_c_rss_before: %ld kB\n", rss0);
    printf("mosq_c_rss_after: %ld kB\n", rss1);
    return ok == cycles ? 0 : 1;
}
