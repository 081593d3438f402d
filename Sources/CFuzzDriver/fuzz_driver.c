#include "fuzz_driver.h"
#include <stdio.h>

extern int LLVMFuzzerRunDriver(int *, char ***, int (*)(const uint8_t *, size_t)) __attribute__((weak));

int fuzz_run(int *argc, char ***argv, fuzz_callback cb) {
    if (!LLVMFuzzerRunDriver) {
        fprintf(stderr, "MQTTPacketFuzz: not built with -sanitize=fuzzer; run scripts/fuzz\n");
        return 2;
    }
    return LLVMFuzzerRunDriver(argc, argv, cb);
}
