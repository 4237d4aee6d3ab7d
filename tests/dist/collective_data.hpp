// Deterministic per-rank inputs for collective tests, and the expected results computed
// locally: every rank can build every other rank's input, so a reference needs no
// communication. Values are small integers, exact in float32, bfloat16 and int64, so
// sums over four ranks compare exactly.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace reel::test {

inline std::vector<at::ScalarType> tested_dtypes() { return {at::kFloat, at::kBFloat16, at::kLong}; }

// Per-rank element counts: empty, one, odd, and large enough that the call's largest
// buffer — `parts` chunks of this count (the world size for all-gather, reduce-scatter
// and all-to-all) — holds at least 8 MiB (plus an odd tail).
inline std::vector<int64_t> tested_sizes(at::ScalarType t, int parts = 1) {
  const int64_t big = (int64_t{8} << 20) / (static_cast<int64_t>(c10::elementSize(t)) * parts) + 3;
  return {0, 1, 7, big};
}

// Elements [offset, offset + n) of rank r's input: values in [-5, 5] that differ per
// rank and element.
inline at::Tensor rank_input(int r, int64_t n, at::ScalarType t, int64_t offset = 0) {
  auto i = at::arange(offset, offset + n, at::kLong);
  return ((i * 3 + r * 7) % 11 - 5).to(t);
}

// The element-wise sum (or max) of every rank's rank_input, in float64 then cast;
// elements [offset, offset + n) only (a reduce-scatter reference needs just its chunk).
inline at::Tensor expected_sum(int ranks, int64_t n, at::ScalarType t, int64_t offset = 0) {
  auto acc = at::zeros({n}, at::kDouble);
  for (int r = 0; r < ranks; ++r) acc += rank_input(r, n, at::kDouble, offset);
  return acc.to(t);
}
inline at::Tensor expected_max(int ranks, int64_t n, at::ScalarType t) {
  auto acc = rank_input(0, n, at::kDouble);
  for (int r = 1; r < ranks; ++r) acc = at::maximum(acc, rank_input(r, n, at::kDouble));
  return acc.to(t);
}
// AVG as the MPI backend computes it: the exact sum, divided in float32 (or wider).
inline at::Tensor expected_avg(int ranks, int64_t n, at::ScalarType t, int64_t offset = 0) {
  const auto wide = t == at::kDouble ? at::kDouble : at::kFloat;
  return expected_sum(ranks, n, wide, offset).div(ranks).to(t);
}

}  // namespace reel::test
