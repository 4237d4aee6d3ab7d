// Every collective of the MPI backend against a locally computed reference: float32,
// bfloat16 and int64; sizes 0, 1, odd and >= 8 MiB; in place and out of place.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "reel/dist/mpi_half.hpp"
#include "reel/dist/traffic.hpp"
#include "tests/dist/collective_data.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

std::string label(at::ScalarType t, int64_t n) { return std::string(c10::toString(t)) + " n=" + std::to_string(n); }

TEST(Collectives, AllReduceSumMaxAvgInPlaceAndOutOfPlace) {
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t)) {
      SCOPED_TRACE(label(t, n));
      auto in_place = rank_input(w.rank(), n, t);
      w.all_reduce(in_place);
      EXPECT_TRUE(in_place.equal(expected_sum(w.size(), n, t)));

      auto input = rank_input(w.rank(), n, t), output = at::full({n}, 99, t);
      w.all_reduce_async(input, output, ReduceOp::kMax)->wait();
      EXPECT_TRUE(output.equal(expected_max(w.size(), n, t)));
      EXPECT_TRUE(input.equal(rank_input(w.rank(), n, t))) << "out of place changed its input";

      if (at::isFloatingType(t)) {
        auto avg = rank_input(w.rank(), n, t);
        w.all_reduce(avg, ReduceOp::kAvg);
        EXPECT_TRUE(avg.equal(expected_avg(w.size(), n, t)));
      }
    }
  }
}

TEST(Collectives, AllGatherInPlaceAndOutOfPlace) {
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t, w.size())) {
      SCOPED_TRACE(label(t, n));
      std::vector<at::Tensor> parts;
      for (int r = 0; r < w.size(); ++r) parts.push_back(rank_input(r, n, t));
      const auto expected = at::cat(parts);

      auto out = at::empty({w.size() * n}, t);
      w.all_gather(rank_input(w.rank(), n, t), out);
      EXPECT_TRUE(out.equal(expected));

      auto buf = at::zeros({w.size() * n}, t);
      auto mine = buf.narrow(0, w.rank() * n, n);
      mine.copy_(rank_input(w.rank(), n, t));
      w.all_gather(mine, buf);
      EXPECT_TRUE(buf.equal(expected));
    }
  }
}

TEST(Collectives, ReduceScatterInPlaceAndOutOfPlace) {
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t, w.size())) {
      SCOPED_TRACE(label(t, n));
      const auto expected = expected_sum(w.size(), n, t, w.rank() * n);

      auto out = at::empty({n}, t);
      w.reduce_scatter(rank_input(w.rank(), w.size() * n, t), out);
      EXPECT_TRUE(out.equal(expected));

      auto buf = rank_input(w.rank(), w.size() * n, t);
      auto mine = buf.narrow(0, w.rank() * n, n);
      w.reduce_scatter(buf, mine);
      EXPECT_TRUE(mine.equal(expected));

      if (at::isFloatingType(t)) {
        auto avg = at::empty({n}, t);
        w.reduce_scatter(rank_input(w.rank(), w.size() * n, t), avg, ReduceOp::kAvg);
        EXPECT_TRUE(avg.equal(expected_avg(w.size(), n, t, w.rank() * n)));
      }
    }
  }
}

// Chunk j of rank r's all-to-all input: distinct per (r, j, element).
at::Tensor a2a_input(int r, int ranks, int64_t n, at::ScalarType t) {
  return (at::arange(ranks * n, at::kLong) % 97 + r * 100).to(t);
}

TEST(Collectives, AllToAllEqualSplitsInPlaceAndOutOfPlace) {
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t, w.size())) {
      SCOPED_TRACE(label(t, n));
      std::vector<at::Tensor> chunks;
      for (int i = 0; i < w.size(); ++i) {
        chunks.push_back(a2a_input(i, w.size(), n, t).narrow(0, w.rank() * n, n));
      }
      const auto expected = at::cat(chunks);

      auto out = at::empty({w.size() * n}, t);
      w.all_to_all(a2a_input(w.rank(), w.size(), n, t), out);
      EXPECT_TRUE(out.equal(expected));

      auto buf = a2a_input(w.rank(), w.size(), n, t);
      w.all_to_all(buf, buf);
      EXPECT_TRUE(buf.equal(expected));
    }
  }
}

TEST(Collectives, AllToAllUnevenRowSplits) {
  auto& w = world();
  const int n = w.size(), r = w.rank();
  // Rank a sends (a + b) % 3 rows of 5 values to rank b; some splits are empty.
  auto rows = [](int a, int b) { return static_cast<int64_t>((a + b) % 3); };
  auto block = [](int a, int b, int64_t k) {
    return (at::arange(k * 5, at::kLong).view({k, 5}) + 1000 * a + 100 * b).to(at::kFloat);
  };
  std::vector<int64_t> send(n), recv(n);
  std::vector<at::Tensor> in_parts, want_parts;
  for (int b = 0; b < n; ++b) {
    send[b] = rows(r, b);
    recv[b] = rows(b, r);
    in_parts.push_back(block(r, b, send[b]));
    want_parts.push_back(block(b, r, recv[b]));
  }
  const auto input = at::cat(in_parts), expected = at::cat(want_parts);
  auto out = at::full_like(expected, -1);
  w.all_to_all_async(input, out, send, recv)->wait();
  EXPECT_TRUE(out.equal(expected));
}

TEST(Collectives, BroadcastFromEveryRoot) {
  auto& w = world();
  for (auto t : tested_dtypes()) {
    for (int64_t n : tested_sizes(t)) {
      SCOPED_TRACE(label(t, n));
      for (int root = 0; root < w.size(); ++root) {
        auto buf = rank_input(w.rank(), n, t);
        w.broadcast(buf, root);
        EXPECT_TRUE(buf.equal(rank_input(root, n, t))) << "root " << root;
      }
    }
  }
}

TEST(Collectives, PointToPointRingBothDirections) {
  auto& w = world();
  const int r = w.rank(), n = w.size(), next = (r + 1) % n, prev = (r + n - 1) % n;
  for (auto t : tested_dtypes()) {
    for (int64_t len : tested_sizes(t)) {
      SCOPED_TRACE(label(t, len));
      auto got = at::empty({len}, t);
      w.sendrecv(rank_input(r, len, t), next, got, prev);
      EXPECT_TRUE(got.equal(rank_input(prev, len, t)));

      // The same exchange as separate async send and recv, posted before either waits.
      auto back = at::empty({len}, t);
      auto s = w.send_async(rank_input(r, len, t), prev, 7);
      auto q = w.recv_async(back, next, 7);
      q->wait();
      s->wait();
      EXPECT_TRUE(back.equal(rank_input(next, len, t)));
    }
  }
}

TEST(Collectives, BarrierAndSplitByParity) {
  auto& w = world();
  w.barrier();
  auto half = w.split(w.rank() % 2, w.rank());
  const int members = (w.size() + 1 - w.rank() % 2) / 2;
  EXPECT_EQ(half->size(), members);
  EXPECT_EQ(half->rank(), w.rank() / 2);
  auto x = at::full({3}, static_cast<float>(w.rank()));
  half->all_reduce(x);
  float want = 0;
  for (int q = w.rank() % 2; q < w.size(); q += 2) want += q;
  EXPECT_TRUE(x.eq(want).all().item<bool>());
  half->barrier();
}

// What each call adds to dist/traffic.hpp's counters: the bytes this rank sends under the
// bandwidth-optimal algorithm (reel plan predicts the same numbers), nothing on one rank.
TEST(Collectives, TrafficCountsTheBytesEachCallSends) {
  auto& w = world();
  const int64_t n = w.size(), b = 4 * 6 * n;  // float32, 6 x size elements: divisible by size
  auto buffer = at::ones({6 * n});
  auto shard = at::ones({6});
  const std::string key = w.label() + ".";
  auto before = traffic::snapshot();
  auto sent = [&](const std::string& op) {
    const auto d = traffic::since(before, traffic::snapshot());
    before = traffic::snapshot();
    const auto it = d.find(key + op);
    return it == d.end() ? int64_t{0} : it->second;
  };
  w.all_reduce(buffer);
  EXPECT_EQ(sent("all_reduce"), 2 * (n - 1) * b / n);
  w.all_gather(shard, buffer);
  EXPECT_EQ(sent("all_gather"), (n - 1) * 4 * 6);
  w.reduce_scatter(buffer, shard);
  EXPECT_EQ(sent("reduce_scatter"), (n - 1) * 4 * 6);
  auto out = at::empty_like(buffer);
  w.all_to_all(buffer, out);
  EXPECT_EQ(sent("all_to_all"), (n - 1) * b / n);
  w.all_to_all_async(buffer, out, std::vector<int64_t>(n, 6), std::vector<int64_t>(n, 6))->wait();
  EXPECT_EQ(sent("all_to_all_v"), (n - 1) * 4 * 6);
  w.broadcast(buffer, 0);
  EXPECT_EQ(sent("broadcast"), w.rank() == 0 && n > 1 ? b : 0);
  w.barrier();
  EXPECT_EQ(traffic::since(before, traffic::snapshot()).size(), 0u) << "a barrier sends no payload";
}

}  // namespace
}  // namespace reel::test

// What reel hands MPI, seen through MPI's profiling interface: these definitions take the
// place of the library's for the calls in this executable and forward to PMPI_*.
namespace {
std::atomic<int64_t> reduce_call_bytes{0};  // count x datatype size of the last reduction
void note_reduction(int count, MPI_Datatype type) {
  int size = 0;
  PMPI_Type_size(type, &size);
  reduce_call_bytes = int64_t{count} * size;
}
}  // namespace
extern "C" int MPI_Allreduce(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
  note_reduction(count, type);
  return PMPI_Allreduce(send, recv, count, type, op, comm);
}
extern "C" int MPI_Reduce_scatter_block(const void* send, void* recv, int count, MPI_Datatype type, MPI_Op op,
                                        MPI_Comm comm) {
  note_reduction(count, type);
  return PMPI_Reduce_scatter_block(send, recv, count, type, op, comm);
}

namespace reel::test {
namespace {

// bf16 and fp16 reductions send 16-bit values over MPI (not widened to fp32), each
// combination rounded once: the bytes the traffic counters report are the bytes sent.
TEST(Collectives, HalfPrecisionReducesInItsOwnWidth) {
  auto& w = world();
  for (auto t : {at::kBFloat16, at::kHalf}) {
    SCOPED_TRACE(c10::toString(t));
    int size = 0;
    MPI_Type_size(mpi_reduce_type(t), &size);
    EXPECT_EQ(size, 2) << "the MPI type a 16-bit reduction sends";
    // Values that are not integers: rank r holds x_r; the reduction must equal the exact
    // sum up to one rounding per combination (exactly the rounded sum on two ranks).
    const int64_t n = 4099;
    auto value = [&](int r) {
      return at::randn({n}, at::TensorOptions().dtype(at::kFloat)).mul_(1 + r).to(t);
    };  // every rank builds every input
    std::vector<at::Tensor> inputs;
    at::manual_seed(7);
    for (int r = 0; r < w.size(); ++r) inputs.push_back(value(r));
    auto exact = at::zeros({n}, at::kDouble), magnitude = at::zeros({n}, at::kDouble);
    for (const auto& x : inputs) exact += x.to(at::kDouble), magnitude += x.to(at::kDouble).abs();
    auto reduced = inputs[w.rank()].clone();
    reduce_call_bytes = 0;
    w.all_reduce(reduced);
    if (w.size() > 1) EXPECT_EQ(reduce_call_bytes.load(), 2 * n) << "all_reduce handed MPI more than 16-bit values";
    // Each rounding errs by at most half a unit in the last place of a partial sum, whose
    // magnitude is at most the sum of magnitudes (2^-8 relative for bf16, 2^-11 for fp16).
    const auto bound = magnitude * ((t == at::kBFloat16 ? 1.0 / 256 : 1.0 / 2048) * (w.size() - 1)) + 1e-7;
    if (w.size() == 2) {
      EXPECT_TRUE(reduced.equal(exact.to(t))) << "two ranks: the correctly rounded sum";
    } else {
      EXPECT_TRUE((reduced.to(at::kDouble) - exact).abs().le(bound).all().item<bool>());
    }
    auto before = traffic::snapshot();
    auto shard = at::empty({n}, t);
    auto whole = at::cat(std::vector<at::Tensor>(w.size(), inputs[w.rank()]));
    reduce_call_bytes = 0;
    w.reduce_scatter(whole, shard);
    if (w.size() > 1) EXPECT_EQ(reduce_call_bytes.load(), 2 * n) << "reduce_scatter handed MPI more than 16-bit values";
    const auto sent = traffic::since(before, traffic::snapshot());
    const auto it = sent.find(w.label() + ".reduce_scatter");
    EXPECT_EQ(it == sent.end() ? 0 : it->second, (w.size() - 1) * 2 * n);
    if (w.size() == 2) EXPECT_TRUE(shard.equal(exact.to(t)));
  }
}

// The combination itself: fp32 arithmetic, one rounding to nearest even.
TEST(Collectives, HalfCombinationRoundsOnceToNearestEven) {
  auto bits = [](float v, bool bf16) {
    uint16_t b;
    if (bf16) {
      c10::BFloat16 h(v);
      std::memcpy(&b, &h, 2);
    } else {
      c10::Half h(v);
      std::memcpy(&b, &h, 2);
    }
    return b;
  };
  // bf16 has 8 significant bits: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 (even: 1);
  // 1 + 3 * 2^-8 ties between 1 + 2^-7 and 1 + 2^-6 (even: 1 + 2^-6).
  uint16_t in[3] = {bits(1.0f, true), bits(1.0f + 2.0f / 256, true), bits(-2.0f, true)};
  uint16_t inout[3] = {bits(1.0f / 256, true), bits(1.0f / 256, true), bits(5.0f, true)};
  combine_half(in, inout, 3, /*bf16=*/true, /*max=*/false);
  EXPECT_EQ(inout[0], bits(1.0f, true));
  EXPECT_EQ(inout[1], bits(1.0f + 4.0f / 256, true));
  EXPECT_EQ(inout[2], bits(3.0f, true));
  uint16_t hin[2] = {bits(1.0f, false), bits(-7.5f, false)}, hout[2] = {bits(0.25f, false), bits(-8.0f, false)};
  combine_half(hin, hout, 2, /*bf16=*/false, /*max=*/true);
  EXPECT_EQ(hout[0], bits(1.0f, false));
  EXPECT_EQ(hout[1], bits(-7.5f, false));
}

}  // namespace
}  // namespace reel::test
