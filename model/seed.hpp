// Seeds derived from values, never from the rank: every layout of a run draws the same
// random numbers as one rank does.
#pragma once

#include <cstdint>
#include <string>

namespace reel {

// splitmix64 finaliser: a well-mixed 64-bit function of x.
inline uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

// A seed from a name (FNV-1a of its bytes).
inline uint64_t mix_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : name) h = (h ^ ch) * 0x100000001b3ULL;
  return mix_seed(seed, h);
}

}  // namespace reel
