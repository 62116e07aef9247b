// Collectives on CPU tensors against values every rank can compute on its own, for
// worlds of 1, 2 and 4, and the bytes_sent formula from communicator.h.
#include <gtest/gtest.h>

#include <numeric>

#include "core/error.h"
#include "parallel/communicator.h"
#include "test_env.h"

namespace pajama {
namespace {

using testing::comm;

// Rank r's contribution: values that differ per rank and per element, not all equal.
torch::Tensor rank_values(int r, int64_t n, torch::ScalarType dtype) {
  return (torch::arange(n, torch::kFloat64) * 0.5 + 3.0 * r + 1.0).to(dtype);
}

int64_t ring(int64_t bytes, int n, int64_t factor) { return n == 1 ? 0 : factor * (n - 1) * bytes / n; }

TEST(Collectives, WorldMatchesLauncher) {
  EXPECT_EQ(comm().size(), testing::world().size);
  EXPECT_EQ(comm().rank(), testing::world().rank);
  EXPECT_EQ(comm().backend(), comm().size() == 1 ? "single" : "mpi");
}

TEST(Collectives, AllReduceSumAvgMaxFp32Fp64Int64) {
  const int n = comm().size(), r = comm().rank();
  const int64_t numel = 1234;  // not a multiple of any world size
  for (auto dtype : {torch::kFloat32, torch::kFloat64, torch::kInt64}) {
    torch::Tensor expect_sum = torch::zeros({numel}, torch::kFloat64);
    for (int q = 0; q < n; ++q) expect_sum += rank_values(q, numel, dtype).to(torch::kFloat64);
    torch::Tensor t = rank_values(r, numel, dtype);
    const int64_t before = comm().bytes_sent();
    comm().all_reduce(t, ReduceOp::kSum);
    EXPECT_EQ(comm().bytes_sent() - before, ring(numel * t.element_size(), n, 2));
    EXPECT_TRUE(torch::equal(t.to(torch::kFloat64), expect_sum)) << c10::toString(dtype);

    torch::Tensor mx = rank_values(r, numel, dtype);
    comm().all_reduce(mx, ReduceOp::kMax);
    EXPECT_TRUE(torch::equal(mx, rank_values(n - 1, numel, dtype))) << c10::toString(dtype);
    if (dtype != torch::kInt64) {
      torch::Tensor avg = rank_values(r, numel, dtype);
      comm().all_reduce(avg, ReduceOp::kAvg);
      EXPECT_TRUE(torch::allclose(avg.to(torch::kFloat64), expect_sum / n, 1e-6, 0)) << c10::toString(dtype);
    }
  }
}

TEST(Collectives, AllReduceBf16) {
  const int n = comm().size(), r = comm().rank();
  torch::Tensor t = torch::full({77}, 0.25 * (r + 1), torch::kBFloat16);
  comm().all_reduce(t, ReduceOp::kSum);
  // 0.25 * (1 + ... + n) is exact in bf16 for n <= 4.
  EXPECT_TRUE(torch::equal(t, torch::full({77}, 0.25 * n * (n + 1) / 2, torch::kBFloat16)));
  torch::Tensor m = torch::full({5}, static_cast<double>(r), torch::kBFloat16);
  comm().all_reduce(m, ReduceOp::kMax);
  EXPECT_TRUE(torch::equal(m, torch::full({5}, static_cast<double>(n - 1), torch::kBFloat16)));
}

TEST(Collectives, ReduceScatterAndAllGather) {
  const int n = comm().size(), r = comm().rank();
  const int64_t chunk = 37;
  torch::Tensor input = rank_values(r, chunk * n, torch::kFloat32);
  torch::Tensor expect = torch::zeros({chunk * n}, torch::kFloat64);
  for (int q = 0; q < n; ++q) expect += rank_values(q, chunk * n, torch::kFloat32).to(torch::kFloat64);
  torch::Tensor out = torch::empty({chunk}, torch::kFloat32);
  int64_t before = comm().bytes_sent();
  comm().reduce_scatter(input, out, ReduceOp::kSum);
  EXPECT_EQ(comm().bytes_sent() - before, ring(chunk * n * 4, n, 1));
  EXPECT_TRUE(torch::equal(out.to(torch::kFloat64), expect.narrow(0, r * chunk, chunk)));

  torch::Tensor mine = torch::full({chunk}, static_cast<double>(r + 1), torch::kFloat32);
  torch::Tensor gathered = torch::empty({chunk * n}, torch::kFloat32);
  before = comm().bytes_sent();
  comm().all_gather(mine, gathered);
  EXPECT_EQ(comm().bytes_sent() - before, ring(chunk * n * 4, n, 1));
  for (int q = 0; q < n; ++q) {
    EXPECT_TRUE(torch::equal(gathered.narrow(0, q * chunk, chunk), torch::full({chunk}, q + 1.0, torch::kFloat32)));
  }
}

TEST(Collectives, UnevenReduceScatterAndInPlaceAllGather) {
  const int n = comm().size(), r = comm().rank();
  std::vector<int64_t> counts;
  for (int q = 0; q < n; ++q) counts.push_back(q == 1 ? 0 : 5 + 3 * q);  // rank 1 gets nothing
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  int64_t offset = 0;
  for (int q = 0; q < r; ++q) offset += counts[static_cast<size_t>(q)];
  const int64_t mine = counts[static_cast<size_t>(r)];

  torch::Tensor input = rank_values(r, total, torch::kFloat32);
  torch::Tensor expect = torch::zeros({total}, torch::kFloat64);
  for (int q = 0; q < n; ++q) expect += rank_values(q, total, torch::kFloat32).to(torch::kFloat64);
  torch::Tensor out = torch::empty({mine}, torch::kFloat32);
  int64_t before = comm().bytes_sent();
  comm().reduce_scatter_v(input, out, counts, ReduceOp::kAvg);
  EXPECT_EQ(comm().bytes_sent() - before, ring(total * 4, n, 1));
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), expect.narrow(0, offset, mine) / n, 1e-6, 0));

  // Accumulating variant: output += the average, twice, from bf16 traffic into fp32
  // (the input is scratch afterwards, so it is rebuilt for each call).
  torch::Tensor acc = torch::full({mine}, 0.5, torch::kFloat32);
  for (int rep = 0; rep < 2; ++rep) {
    torch::Tensor scratch = rank_values(r, total, torch::kFloat32).to(torch::kBFloat16);
    before = comm().bytes_sent();
    comm().reduce_scatter_v_add(scratch, acc, counts, ReduceOp::kAvg);
    EXPECT_EQ(comm().bytes_sent() - before, ring(total * 2, n, 1));
  }
  torch::Tensor expect_bf16 = torch::zeros({total}, torch::kFloat64);
  for (int q = 0; q < n; ++q) {
    expect_bf16 += rank_values(q, total, torch::kFloat32).to(torch::kBFloat16).to(torch::kFloat64);
  }
  EXPECT_TRUE(torch::allclose(acc.to(torch::kFloat64), 0.5 + 2.0 * expect_bf16.narrow(0, offset, mine) / n, 2e-2, 1e-2))
      << acc << "\n" << expect_bf16.narrow(0, offset, mine);

  // In place: each rank writes its own segment of the output, then gathers the rest.
  torch::Tensor buf = torch::full({total}, -1.0, torch::kFloat32);
  buf.narrow(0, offset, mine).fill_(r + 10.0);
  torch::Tensor in = buf.narrow(0, offset, mine);
  before = comm().bytes_sent();
  comm().all_gather_v(in, buf, counts);
  EXPECT_EQ(comm().bytes_sent() - before, ring(total * 4, n, 1));
  int64_t o = 0;
  for (int q = 0; q < n; ++q) {
    const int64_t c = counts[static_cast<size_t>(q)];
    EXPECT_TRUE(torch::equal(buf.narrow(0, o, c), torch::full({c}, q + 10.0, torch::kFloat32))) << "segment " << q;
    o += c;
  }
}

TEST(Collectives, BroadcastBarrierStringsAndFlags) {
  const int n = comm().size(), r = comm().rank();
  const int root = n - 1;
  torch::Tensor t = r == root ? torch::arange(100, torch::kInt64) : torch::zeros({100}, torch::kInt64);
  const int64_t before = comm().bytes_sent();
  comm().broadcast(t, root);
  EXPECT_EQ(comm().bytes_sent() - before, (r == root && n > 1) ? 800 : 0);
  EXPECT_TRUE(torch::equal(t, torch::arange(100, torch::kInt64)));
  comm().barrier();

  const std::string s = broadcast_string(comm(), r == 0 ? std::string("checkpoints/step_00000042 \xe4\xb8\xad") : "", 0);
  EXPECT_EQ(s, "checkpoints/step_00000042 \xe4\xb8\xad");
  EXPECT_EQ(broadcast_string(comm(), "", 0), "");
  EXPECT_FALSE(any_rank(comm(), false));
  EXPECT_TRUE(any_rank(comm(), r == n - 1));
}

TEST(Collectives, MismatchedSizesAreErrors) {
  const int n = comm().size();
  torch::Tensor in = torch::zeros({10 * n + 1});
  torch::Tensor out = torch::zeros({10});
  EXPECT_THROW(comm().reduce_scatter(in, out, ReduceOp::kSum), CommError);
  torch::Tensor strided = torch::zeros({4, 4}).t();
  EXPECT_THROW(comm().all_reduce(strided, ReduceOp::kSum), CommError);
}

}  // namespace
}  // namespace pajama
