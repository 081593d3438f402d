// Starts libFuzzer from a Swift main (SwiftPM replaces libFuzzer's own main; see scripts/fuzz).
#ifndef FUZZ_DRIVER_H
#define FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>
typedef int (*fuzz_callback)(const uint8_t *data, size_t size);
/// Runs libFuzzer with argc/argv; returns 2 with a hint when not built with -sanitize=fuzzer.
int fuzz_run(int *argc, char ***argv, fuzz_callback cb);
#endif
