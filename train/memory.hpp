// This process's memory as the operating system sees it (Linux /proc), for metrics and
// for the tests that check what a rank holds.
#pragma once

#include <cstdint>

namespace reel {

int64_t resident_bytes();       // VmRSS now
int64_t peak_resident_bytes();  // VmHWM: the high-water mark since start or the last reset
// Resets the high-water mark to the current resident size (/proc/self/clear_refs, Linux
// >= 4.0). Returns false where the kernel does not allow it.
bool reset_peak_resident();

}  // namespace reel
