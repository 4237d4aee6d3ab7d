// Every collective of the MPI backend against a locally computed reference: float32,
// bfloat16 and int64; sizes 0, 1, odd and >= 8 MiB; in place and out of place.
#include <gtest/gtest.h>

#include "dist/traffic.hpp"
#include "tests/dist/collective_data.hpp"
#include "tests/support/test_env.hpp"

namespace reel::test {
namespace {

std::string label(at::ScalarType t, int64_t n) {
  return std::string(c10::toString(t)) + " n=" + std::to_string(n);
}

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
