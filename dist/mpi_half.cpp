#include "reel/dist/mpi_half.hpp"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "reel/dist/error.hpp"

namespace reel {
namespace {

template <typename T>
void combine(const uint16_t* in, uint16_t* inout, int64_t n, bool max) {
  for (int64_t i = 0; i < n; ++i) {
    T a, b;
    std::memcpy(&a, in + i, 2);
    std::memcpy(&b, inout + i, 2);
    const float x = static_cast<float>(a), y = static_cast<float>(b);
    const T r(max ? std::max(x, y) : x + y);  // one rounding, to nearest even
    std::memcpy(inout + i, &r, 2);
  }
}

struct HalfTypes {
  MPI_Datatype bf16 = MPI_DATATYPE_NULL, f16 = MPI_DATATYPE_NULL;
  MPI_Op sum = MPI_OP_NULL, max = MPI_OP_NULL;
};

HalfTypes& types() {
  static HalfTypes t;
  return t;
}

// MPI's user-function signature; `type` tells which 16-bit type the buffers hold.
void apply(void* in, void* inout, int* len, MPI_Datatype* type, bool max) {
  const bool bf16 = *type == types().bf16;
  combine_half(static_cast<const uint16_t*>(in), static_cast<uint16_t*>(inout), *len, bf16, max);
}
void sum_fn(void* in, void* inout, int* len, MPI_Datatype* type) { apply(in, inout, len, type, false); }
void max_fn(void* in, void* inout, int* len, MPI_Datatype* type) { apply(in, inout, len, type, true); }

// Created once per process, after MPI_Init; never freed (MPI_Finalize releases them).
const HalfTypes& half_types() {
  static std::once_flag once;
  std::call_once(once, [] {
    HalfTypes& t = types();
    REEL_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &t.bf16));
    REEL_MPI_CHECK(MPI_Type_commit(&t.bf16));
    REEL_MPI_CHECK(MPI_Type_contiguous(2, MPI_BYTE, &t.f16));
    REEL_MPI_CHECK(MPI_Type_commit(&t.f16));
    REEL_MPI_CHECK(MPI_Op_create(&sum_fn, /*commute=*/1, &t.sum));
    REEL_MPI_CHECK(MPI_Op_create(&max_fn, /*commute=*/1, &t.max));
  });
  return types();
}

}  // namespace

void combine_half(const uint16_t* in, uint16_t* inout, int64_t n, bool bf16, bool max) {
  if (bf16) {
    combine<c10::BFloat16>(in, inout, n, max);
  } else {
    combine<c10::Half>(in, inout, n, max);
  }
}

MPI_Datatype mpi_reduce_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kChar:
      return MPI_INT8_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kBFloat16:
      return half_types().bf16;
    case at::kHalf:
      return half_types().f16;
    default:
      throw std::invalid_argument(std::string("no MPI type for ") + c10::toString(t));
  }
}

MPI_Op mpi_reduce_op(at::ScalarType t, bool max) {
  if (t != at::kBFloat16 && t != at::kHalf) return max ? MPI_MAX : MPI_SUM;
  return max ? half_types().max : half_types().sum;
}

}  // namespace reel
