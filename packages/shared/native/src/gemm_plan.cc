// Blocking and task-grid choices for RunGemm (gemm.h).
#include <algorithm>

#include "gemm.h"

namespace ganfleet {
namespace {

// A task packs kc x (its columns) of B; keep that within half of Zen 4's 1 MiB L2.
constexpr long long kBBlockBytes = 384 * 1024;
// Rows per task: the task's C block is revisited once per K block, so keep it
// L2-sized too.
constexpr long long kCBlockBytes = 384 * 1024;
// Below this many multiply-adds (tens of microseconds on one core), waking
// the workers costs more than they save.
constexpr double kMinParallelFmas = 1 << 22;

int CeilDiv(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace

std::vector<KBlock> SplitK(int nseg, int seglen, int kc) {
  std::vector<KBlock> blocks;
  if (nseg <= 0 || seglen <= 0) {
    blocks.push_back({0, 0, 0, 0});
  } else if (seglen >= kc) {
    const int parts = CeilDiv(seglen, kc);
    for (int s = 0; s < nseg; ++s)
      for (int i = 0; i < parts; ++i) {
        const int off = SplitPoint(seglen, parts, i);
        blocks.push_back({s, 1, off, SplitPoint(seglen, parts, i + 1) - off});
      }
  } else {
    const int parts = CeilDiv(nseg, std::max(1, kc / seglen));
    for (int i = 0; i < parts; ++i) {
      const int s0 = SplitPoint(nseg, parts, i);
      blocks.push_back({s0, SplitPoint(nseg, parts, i + 1) - s0, 0, seglen});
    }
  }
  return blocks;
}

Grid PlanGrid(int m, int n, long long k, int kc, int nr, const KernelSet& ks, int threads) {
  const int tiles = CeilDiv(m, ks.mr);
  const int panels = CeilDiv(n, nr);
  const int panels_per_block = std::max(1, static_cast<int>(kBBlockBytes / (4LL * std::max(kc, 1) * nr)));
  Grid g{1, CeilDiv(panels, panels_per_block)};
  const long long block_cols = std::min<long long>(n, 1LL * panels_per_block * nr);
  const int rows_per_block = std::max(ks.mr, static_cast<int>(kCBlockBytes / (4 * block_cols)));
  g.row_blocks = std::min(tiles, CeilDiv(m, rows_per_block));
  const double fmas = static_cast<double>(m) * n * k;
  const int t = fmas < kMinParallelFmas ? 1 : threads;
  // Enough tasks for every thread, and a multiple of the thread count while
  // tasks are few (so that no thread idles at the end). Splitting columns
  // only re-reads A, splitting rows re-packs B, so columns go first while
  // blocks stay at least two panels wide.
  for (;;) {
    const int tasks = g.row_blocks * g.col_blocks;
    if (tasks >= t && (tasks % t == 0 || tasks >= 32 * t)) break;
    const bool can_cols = g.col_blocks < panels;
    const bool can_rows = g.row_blocks < tiles;
    if (can_cols && (panels / (g.col_blocks + 1) >= 2 || !can_rows)) {
      ++g.col_blocks;
    } else if (can_rows) {
      ++g.row_blocks;
    } else {
      break;
    }
  }
  return g;
}

}  // namespace ganfleet
