/*
 * The libFuzzer entry point of one fuzz binary. CMake compiles this file once
 * per target with AB_FUZZ_ENTRY set to that target's ab_fuzz_<name> function.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/targets.h"

#ifndef AB_FUZZ_ENTRY
#error "define AB_FUZZ_ENTRY to an ab_fuzz_<name> function"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return AB_FUZZ_ENTRY(data, size);
}
