// 16-bit floating types for MPI: MPI has no bfloat16 or float16, so reel defines them
// (contiguous pairs of bytes) and their SUM and MAX, so that a bf16 reduction sends bf16
// bytes over MPI, as NCCL does, instead of widening to fp32 and sending twice the bytes.
//
// Arithmetic: each combination of two values is computed in fp32 and rounded once to the
// 16-bit type (round to nearest even), as NCCL's bf16 reductions round after each step.
// A sum of n ranks' values is therefore the exact sum up to n - 1 roundings to the type:
// with two ranks, exactly the correctly rounded sum. The combination is commutative
// (fp32 addition of two values is), so every rank of an all-reduce gets the same bits.
#pragma once

#include <mpi.h>

#include <ATen/ATen.h>

#include <cstdint>

namespace reel {

// The MPI datatype reel reduces `t` as: MPI's own for the types it has, reel's 16-bit
// types for kBFloat16 and kHalf (created on first use, after MPI_Init). Throws
// std::invalid_argument for a type without one.
MPI_Datatype mpi_reduce_type(at::ScalarType t);
// MPI_SUM / MPI_MAX for MPI's types; reel's own ops for the 16-bit types.
MPI_Op mpi_reduce_op(at::ScalarType t, bool max);

// The element-wise combination the 16-bit ops apply (inout[i] = in[i] (+|max) inout[i],
// rounded once): for tests.
void combine_half(const uint16_t* in, uint16_t* inout, int64_t n, bool bf16, bool max);

}  // namespace reel
