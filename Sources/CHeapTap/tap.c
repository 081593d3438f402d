// The heap tap: an LD_PRELOAD library that counts live heap blocks and bytes, in total and
// per call site, in a shared table mshmon maps read-only (layout: CTapLayout/mshmon_tap.h).
// It only records; mshmon symbolises and judges. Small and dumb on purpose:
// - every block gets a 16-byte header (size, site, alignment offset, magic) in front, so
//   free and realloc know what to subtract without a side table or a lock;
// - a site is up to four return addresses: the allocator's caller (always exact), then
//   frame-pointer links, followed only while they stay inside this thread's stack and
//   return into code (an executable segment of a loaded object): where the caller keeps no
//   frame pointer, the walk stops instead of recording stack garbage;
// - it never allocates through the interposed functions itself: while it resolves the real
//   allocator (dlsym may call calloc) a static arena serves, and its own work (reading the
//   stack bounds) runs under a per-thread guard that records no site;
// - after fork the child counts into a private table (never the parent's); an exec'd program
//   finds the table's owner taken and does the same; with no table it only adds headers.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mshmon_tap.h"

#define HEADER 16u
#define MAGIC 0x6d736870u  /* "phsm" */

typedef struct {
    uint64_t size;     // bytes the caller asked for
    uint32_t site;     // index into the table's sites
    uint16_t offset;   // (user pointer - header - real block) / 16, for aligned blocks
    uint16_t magic;
} header_t;
_Static_assert(sizeof(header_t) == HEADER, "16-byte header keeps malloc's alignment");

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_memalign)(size_t, size_t);
static size_t (*real_usable)(void *);

static mshmon_tap_table *table;
static _Atomic int resolving;
// initial-exec: a thread-local of a preloaded library then costs one load, not a
// __tls_get_addr call (which the default model for shared objects makes on every access).
#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS int guard;
static TLS uintptr_t stack_lo, stack_hi;
/// The code range the last frame fell in (most frames share one).
static TLS uintptr_t last_lo, last_hi;
/// This thread's counter slab (0: none yet, or the shared one), and whether it was claimed.
static TLS uint32_t slab;
static TLS int slab_tried;
static pthread_key_t slab_key;
static void release_slab(void *value);

// What dlsym allocates before the real functions are known.
static _Alignas(16) unsigned char arena[65536];
static _Atomic size_t arena_used;

static int in_arena(const void *p) {
    return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static void *arena_alloc(size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    size_t at = atomic_fetch_add(&arena_used, need);
    if (at + need > sizeof arena) return NULL;
    return arena + at;
}

static void resolve(void) {
    if (real_malloc) return;
    atomic_store(&resolving, 1);
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
    atomic_store(&resolving, 0);
}

static mshmon_tap_table *private_table(void) {
    void *m = mmap(NULL, sizeof(mshmon_tap_table), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : (mshmon_tap_table *)m;
}

// After fork: the child's blocks are its own business, not the parent's table.
static void child_after_fork(void) {
    table = private_table();
    slab_tried = 0;  // a fresh table: claim a slab in it
}

__attribute__((constructor)) static void tap_init(void) {
    resolve();
    const char *path = getenv(MSHMON_TAP_ENV);
    mshmon_tap_table *t = NULL;
    if (path && *path) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            if (ftruncate(fd, sizeof(mshmon_tap_table)) == 0) {
                void *m = mmap(NULL, sizeof(mshmon_tap_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (m != MAP_FAILED) t = (mshmon_tap_table *)m;
            }
            close(fd);  // the mapping stays: a target that closes every fd keeps counting
        }
    }
    if (t) {
        int32_t unowned = 0;
        if (!atomic_compare_exchange_strong((_Atomic int32_t *)&t->owner_pid, &unowned, (int32_t)getpid())) {
            munmap(t, sizeof(mshmon_tap_table));  // another process's table (we were exec'd by the target)
            t = private_table();
        } else {
            t->version = MSHMON_TAP_VERSION;
            atomic_store((_Atomic uint64_t *)&t->magic, MSHMON_TAP_MAGIC);
        }
    }
    pthread_atfork(NULL, NULL, child_after_fork);
    pthread_key_create(&slab_key, release_slab);
    table = t;
}

// MARK: call sites

// Executable segments of the loaded objects, for telling a return address from stack data.
// Rebuilt (under a spin flag) when an exact first frame falls outside them: a new library.
#define MAX_RANGES 512
static uintptr_t code_lo[MAX_RANGES], code_hi[MAX_RANGES];
static _Atomic int code_count;
static _Atomic int code_rebuilding;

static int add_ranges(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    int *n = data;
    for (int i = 0; i < info->dlpi_phnum && *n < MAX_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            code_lo[*n] = info->dlpi_addr + ph->p_vaddr;
            code_hi[*n] = code_lo[*n] + ph->p_memsz;
            (*n)++;
        }
    }
    return 0;
}

static int is_code(uintptr_t a) {
    if (a >= last_lo && a < last_hi) return 1;
    int n = atomic_load_explicit(&code_count, memory_order_acquire);
    for (int i = 0; i < n; i++) {
        if (a >= code_lo[i] && a < code_hi[i]) {
            last_lo = code_lo[i];
            last_hi = code_hi[i];
            return 1;
        }
    }
    return 0;
}

__attribute__((noinline, cold)) static void rebuild_code_ranges(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&code_rebuilding, &expected, 1)) return;  // another thread is at it
    guard++;
    atomic_store_explicit(&code_count, 0, memory_order_release);
    int n = 0;
    dl_iterate_phdr(add_ranges, &n);
    atomic_store_explicit(&code_count, n, memory_order_release);
    guard--;
    atomic_store(&code_rebuilding, 0);
}

__attribute__((noinline, cold)) static void stack_bounds(void) {
    guard++;
    pthread_attr_t attr;
    void *lo;
    size_t size;
    stack_hi = 1;  // tried: never again in this thread, even if it fails
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        if (pthread_attr_getstack(&attr, &lo, &size) == 0) {
            stack_lo = (uintptr_t)lo;
            stack_hi = (uintptr_t)lo + size;
        }
        pthread_attr_destroy(&attr);
    }
    guard--;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

// `caller` is the interposed function's return address; `fp` its frame pointer.
static uint32_t site_of(uintptr_t caller, uintptr_t *fp) {
    mshmon_tap_table *t = table;
    if (!t || guard) return 0;
    if (!stack_hi) stack_bounds();
    if (!is_code(caller)) rebuild_code_ranges();
    int walk = stack_lo != 0 && (uintptr_t)fp >= stack_lo && (uintptr_t)fp < stack_hi - 2 * sizeof(uintptr_t);
    uint64_t frames[MSHMON_TAP_DEPTH];
    uint32_t depth = 0;
    frames[depth++] = caller;
    // Our frame's saved link is the caller's frame pointer, if the caller keeps one.
    uintptr_t *frame = fp;
    while (walk && depth < MSHMON_TAP_DEPTH) {
        uintptr_t *next = (uintptr_t *)frame[0];
        if ((uintptr_t)next <= (uintptr_t)frame || (uintptr_t)next >= stack_hi - 2 * sizeof(uintptr_t) ||
            (uintptr_t)next < stack_lo || ((uintptr_t)next & 7)) break;
        uintptr_t ret = next[1];
        if (!is_code(ret)) break;
        frames[depth++] = ret;
        frame = next;
    }
    uint64_t key = 0x5bd1e995ULL;
    for (uint32_t i = 0; i < depth; i++) key = mix(key, frames[i]);
    if (key == 0) key = 1;
    uint32_t mask = MSHMON_TAP_SITES - 1;
    uint32_t i = (uint32_t)(key ^ (key >> 29)) & mask;
    for (uint32_t probe = 0; probe < 64; probe++, i = (i + 1) & mask) {
        if (i == 0) continue;  // slot 0 is "other sites"
        mshmon_tap_site *s = &t->sites[i];
        uint64_t seen = atomic_load_explicit((_Atomic uint64_t *)&s->key, memory_order_acquire);
        if (seen == key) return i;
        if (seen == 0) {
            uint64_t expected = 0;
            if (atomic_compare_exchange_strong((_Atomic uint64_t *)&s->key, &expected, key)) {
                memcpy(s->frames, frames, depth * sizeof frames[0]);
                s->depth = depth;
                atomic_store_explicit((_Atomic uint32_t *)&s->ready, 1, memory_order_release);
                return i;
            }
            if (expected == key) return i;
        }
    }
    atomic_fetch_add_explicit((_Atomic uint64_t *)&t->overflowed, 1, memory_order_relaxed);
    return 0;
}

// A thread's slab goes back at its exit; frees later in that exit count in the shared slab.
static void release_slab(void *value) {
    mshmon_tap_table *t = table;
    uint32_t mine = (uint32_t)(uintptr_t)value;
    slab = 0;
    if (t && mine > 0 && mine < MSHMON_TAP_SLABS)
        atomic_fetch_and((_Atomic uint64_t *)&t->slabs_taken, ~(1ULL << mine));
}

__attribute__((noinline, cold)) static void claim_slab(mshmon_tap_table *t) {
    slab_tried = 1;
    uint64_t taken = atomic_load((_Atomic uint64_t *)&t->slabs_taken);
    while (~(taken | 1)) {
        uint32_t n = (uint32_t)__builtin_ctzll(~(taken | 1));  // slab 0 is the shared one, never claimed
        if (atomic_compare_exchange_weak((_Atomic uint64_t *)&t->slabs_taken, &taken, taken | (1ULL << n) | 1)) {
            uint32_t used = atomic_load((_Atomic uint32_t *)&t->slabs_used);
            while (used < n + 1 && !atomic_compare_exchange_weak((_Atomic uint32_t *)&t->slabs_used, &used, n + 1)) {}
            slab = n;
            guard++;
            pthread_setspecific(slab_key, (void *)(uintptr_t)n);
            guard--;
            return;
        }
    }
    slab = 0;  // every slab taken: the shared one
}

static inline void count(uint32_t site, int64_t blocks, int64_t bytes) {
    mshmon_tap_table *t = table;
    if (!t) return;
    if (!slab_tried) claim_slab(t);
    mshmon_tap_count *c = &t->counts[slab][site];
    if (slab == 0) {
        atomic_fetch_add_explicit((_Atomic int64_t *)&c->live_blocks, blocks, memory_order_relaxed);
        atomic_fetch_add_explicit((_Atomic int64_t *)&c->live_bytes, bytes, memory_order_relaxed);
    } else {
        // Only this thread writes its slab: whole relaxed stores, no lock prefix.
        atomic_store_explicit((_Atomic int64_t *)&c->live_blocks,
                              atomic_load_explicit((_Atomic int64_t *)&c->live_blocks, memory_order_relaxed) + blocks, memory_order_relaxed);
        atomic_store_explicit((_Atomic int64_t *)&c->live_bytes,
                              atomic_load_explicit((_Atomic int64_t *)&c->live_bytes, memory_order_relaxed) + bytes, memory_order_relaxed);
    }
}

// MARK: blocks

static header_t *header_of(void *user) { return (header_t *)((unsigned char *)user - HEADER); }

static void *real_base(header_t *h) { return (unsigned char *)h - (size_t)h->offset * 16; }

static void *finish(void *base, size_t offset, size_t size, uint32_t site) {
    if (!base) return NULL;
    header_t *h = (header_t *)((unsigned char *)base + offset);
    h->size = size;
    h->site = site;
    h->offset = (uint16_t)(offset / 16);
    h->magic = (uint16_t)MAGIC;
    count(site, 1, (int64_t)size);
    return (unsigned char *)h + HEADER;
}

// A block of ours: a header with the magic, and not from the arena.
static header_t *ours(void *p) {
    if (!p || in_arena(p)) return NULL;
    header_t *h = header_of(p);
    return h->magic == (uint16_t)MAGIC ? h : NULL;
}

#define SITE() site_of((uintptr_t)__builtin_return_address(0), (uintptr_t *)__builtin_frame_address(0))

static void *tap_malloc(size_t n, uint32_t site) {
    if (n > SIZE_MAX - HEADER) { errno = ENOMEM; return NULL; }
    return finish(real_malloc(n + HEADER), 0, n, site);
}

static void *tap_aligned(size_t align, size_t n, uint32_t site) {
    if (align <= HEADER) return tap_malloc(n, site);
    if (align / 16 > UINT16_MAX || n > SIZE_MAX - align) { errno = EINVAL; return NULL; }
    // The header sits right before the aligned user pointer: base + align - 16.
    return finish(real_memalign(align, n + align), align - HEADER, n, site);
}

__attribute__((visibility("default"))) void *malloc(size_t n) {
    if (!real_malloc) {
        if (atomic_load(&resolving)) return arena_alloc(n);
        resolve();
    }
    return tap_malloc(n, SITE());
}

__attribute__((visibility("default"))) void *calloc(size_t count_, size_t size) {
    if (!real_malloc) {
        // dlsym's own calloc: the arena is static, hence zeroed.
        if (atomic_load(&resolving)) return size && count_ > SIZE_MAX / size ? NULL : arena_alloc(count_ * size);
        resolve();
    }
    if (size && count_ > (SIZE_MAX - HEADER) / size) { errno = ENOMEM; return NULL; }
    size_t n = count_ * size;
    return finish(real_calloc(1, n + HEADER), 0, n, SITE());
}

__attribute__((visibility("default"))) void free(void *p) {
    if (!p || in_arena(p)) return;
    if (!real_malloc) resolve();
    header_t *h = ours(p);
    if (!h) { real_free(p); return; }  // not allocated through the tap
    count(h->site, -1, -(int64_t)h->size);
    h->magic = 0;
    real_free(real_base(h));
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n) {
    if (!real_malloc) {
        if (atomic_load(&resolving)) return arena_alloc(n);
        resolve();
    }
    uint32_t site = SITE();
    if (!p) return tap_malloc(n, site);
    if (in_arena(p)) {
        void *q = tap_malloc(n, site);
        if (q) memcpy(q, p, n);  // the arena block is at least as large as what was asked
        return q;
    }
    header_t *h = ours(p);
    if (!h) return real_realloc(p, n);
    if (n == 0) { free(p); return NULL; }
    if (n > SIZE_MAX - HEADER - (size_t)h->offset * 16) { errno = ENOMEM; return NULL; }
    size_t offset = (size_t)h->offset * 16;
    uint64_t old = h->size;
    uint32_t old_site = h->site;
    void *base = real_realloc(real_base(h), n + offset + HEADER);
    if (!base) return NULL;  // the old block stays as it was
    count(old_site, -1, -(int64_t)old);
    return finish(base, offset, n, site);
}

__attribute__((visibility("default"))) void *reallocarray(void *p, size_t count_, size_t size) {
    if (size && count_ > SIZE_MAX / size) { errno = ENOMEM; return NULL; }
    return realloc(p, count_ * size);
}

__attribute__((visibility("default"))) int posix_memalign(void **out, size_t align, size_t n) {
    if (!real_malloc) resolve();
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = tap_aligned(align, n, SITE());
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((visibility("default"))) void *aligned_alloc(size_t align, size_t n) {
    if (!real_malloc) resolve();
    if (align == 0 || (align & (align - 1))) { errno = EINVAL; return NULL; }
    return tap_aligned(align, n, SITE());
}

__attribute__((visibility("default"))) void *memalign(size_t align, size_t n) {
    if (!real_malloc) resolve();
    if (align == 0 || (align & (align - 1))) { errno = EINVAL; return NULL; }
    return tap_aligned(align, n, SITE());
}

__attribute__((visibility("default"))) void *valloc(size_t n) {
    if (!real_malloc) resolve();
    return tap_aligned((size_t)sysconf(_SC_PAGESIZE), n, SITE());
}

__attribute__((visibility("default"))) void *pvalloc(size_t n) {
    if (!real_malloc) resolve();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - page) { errno = ENOMEM; return NULL; }
    return tap_aligned(page, (n + page - 1) & ~(page - 1), SITE());
}

__attribute__((visibility("default"))) size_t malloc_usable_size(void *p) {
    if (!p) return 0;
    if (in_arena(p)) return 0;
    if (!real_malloc) resolve();
    header_t *h = ours(p);
    if (!h) return real_usable(p);
    return real_usable(real_base(h)) - (size_t)h->offset * 16 - HEADER;
}
