// Blocked GEMM driver (GotoBLAS/BLIS style) shared by sgemm and the convolutions.
//
// A "problem" supplies the operands; the driver owns blocking, packing
// buffers, threading and the micro-kernel calls:
//   int m, n;                 C is m x n
//   int nseg, seglen;         K = nseg * seglen (a convolution's segment is
//                             a filter tap or row: see Windows in conv.h)
//   bool a_panel;             A mode (see kernel.h); only the accessor of
//                             that mode is called, the other may be a stub
//   void ARows(int m0, int mr, const KBlock&, const float** out, int stride) const;
//   const float* APanel(int m0, const KBlock&) const;  std::ptrdiff_t a_stride;
//   void PackB(const KBlock&, int n0, int nc, int nr, float* dst) const;
//       dst: one (kb.k() x nr) panel per nr columns, row-major, zero padded
//       (nr == 1 for the dot-product path: one contiguous K vector)
//   void CRows(int m0, int mr, float** out) const;   row pointers of C
//
// Determinism: threads split only C (whole tiles); every element is reduced
// over the same K blocks in the same order by the same arithmetic whatever
// the thread count or tile it falls in, so results are bit-identical.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "kernel.h"
#include "thread_pool.h"
#include "workspace.h"

namespace ganfleet {

// K block: segments [s0, s0 + ns), elements [off, off + len) of each.
struct KBlock {
  int s0, ns, off, len;
  int k() const { return ns * len; }
};

// C = act(alpha * A.B + beta * C + bias), bias per column.
struct Epilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* bias = nullptr;
  bool relu = false;
};

// Everything a kernel call needs from the addon instance.
struct Exec {
  const KernelSet& ks;
  ThreadPool& pool;
  Workspace& ws;
};

// Splits K into blocks of about ks.kc elements that never straddle segments
// (whole segments are grouped, or one long segment is cut evenly). Depends on
// the shape only, which keeps the summation order fixed. At least one block,
// so K == 0 still runs the epilogue.
std::vector<KBlock> SplitK(int nseg, int seglen, int kc);

// C split into row_blocks x col_blocks tasks (whole tiles/panels each).
struct Grid {
  int row_blocks;
  int col_blocks;
};
// k: the whole reduction length; kc: the largest K block; nr: panel width.
Grid PlanGrid(int m, int n, long long k, int kc, int nr, const KernelSet& ks, int threads);

// Start of part `i` of `units` units split into `parts` near-equal parts.
inline int SplitPoint(int units, int parts, int i) { return static_cast<int>(static_cast<long long>(units) * i / parts); }

// B packed for every K block at once stays L2-resident up to this size; the
// driver then finishes each C tile before the next (tile-outer order), which
// keeps the tile's A rows and C in L1. Otherwise B is packed block by block
// and each block sweeps all tiles. The order never changes any arithmetic.
constexpr std::size_t kWholeBBytes = 512 * 1024;

template <class Problem>
void RunGemm(const Problem& p, const Epilogue& ep, Exec& ex) {
  if (p.m <= 0 || p.n <= 0) return;
  const KernelSet& ks = ex.ks;
  const std::vector<KBlock> blocks = SplitK(p.nseg, p.seglen, ks.kc);
  std::vector<std::size_t> k_start;  // first row of each block in a whole-B pack
  int max_k = 0, max_ns = 0;
  std::size_t k = 0;
  for (const KBlock& kb : blocks) {
    k_start.push_back(k);
    max_k = std::max(max_k, kb.k());
    max_ns = std::max(max_ns, kb.ns);
    k += kb.k();
  }
  // A single column runs as dot products (vectors along K), not as a tile
  // with one live lane; the choice depends on the shape only.
  const bool dot = p.n == 1 && !p.a_panel;
  const int nr = dot ? 1 : ks.nr;
  const Grid g = PlanGrid(p.m, p.n, static_cast<long long>(k), max_k, nr, ks, ex.pool.threads());
  const int tiles = (p.m + ks.mr - 1) / ks.mr;
  const int panels = (p.n + nr - 1) / nr;
  const std::size_t max_cols = static_cast<std::size_t>((panels + g.col_blocks - 1) / g.col_blocks) * nr;
  const bool whole_b = k * max_cols * sizeof(float) <= kWholeBBytes;
  ex.ws.Reserve(ex.pool.threads(), std::max<std::size_t>(1, (whole_b ? k : max_k) * max_cols), static_cast<std::size_t>(max_ns) * ks.mr);

  ex.pool.Run(g.row_blocks * g.col_blocks, [&](int task, int worker) {
    const int rb = task / g.col_blocks, cb = task % g.col_blocks;
    const int r0 = SplitPoint(tiles, g.row_blocks, rb) * ks.mr;
    const int r1 = std::min(p.m, SplitPoint(tiles, g.row_blocks, rb + 1) * ks.mr);
    const int c0 = SplitPoint(panels, g.col_blocks, cb) * nr;
    const int c1 = std::min(p.n, SplitPoint(panels, g.col_blocks, cb + 1) * nr);
    const std::size_t cols = static_cast<std::size_t>(c1 - c0 + nr - 1) / nr * nr;
    float* bpack = ex.ws.Floats(worker);
    const float** aptr = ex.ws.Pointers(worker);
    float* crow[kMaxMr];
    float* cptr[kMaxMr];
    KernelArgs a{};
    a.alpha = ep.alpha;
    a.beta = ep.beta;
    a.relu = ep.relu;
    a.a_rows = aptr;
    a.a_stride = p.a_stride;
    a.c = cptr;

    // C tile rows [m0, m0 + mr) x the task's columns, K block q, B block at bq.
    auto tile = [&](std::size_t q, int m0, const float* bq) {
      const KBlock& kb = blocks[q];
      const int mr = std::min(ks.mr, r1 - m0);
      a.nseg = kb.ns;
      a.seglen = kb.len;
      a.first = q == 0;
      a.last = q + 1 == blocks.size();
      if (p.a_panel) {
        a.a_panel = p.APanel(m0, kb);
      } else {
        p.ARows(m0, mr, kb, aptr, ks.mr);
      }
      p.CRows(m0, mr, crow);
      for (int n0 = c0; n0 < c1; n0 += nr) {
        const int nc = std::min(nr, c1 - n0);
        for (int i = 0; i < mr; ++i) cptr[i] = crow[i] + n0;
        a.n = nc;
        a.b = bq + static_cast<std::size_t>((n0 - c0) / nr) * kb.k() * nr;
        a.bias = ep.bias != nullptr ? ep.bias + n0 : nullptr;
        const KernelFn fn = dot ? ks.dot[mr - 1] : (p.a_panel ? ks.panel : ks.rows)[mr - 1][(nc + ks.vl - 1) / ks.vl - 1];
        fn(a);
      }
    };

    if (whole_b) {
      for (std::size_t q = 0; q < blocks.size(); ++q) p.PackB(blocks[q], c0, c1 - c0, nr, bpack + k_start[q] * cols);
      for (int m0 = r0; m0 < r1; m0 += ks.mr)
        for (std::size_t q = 0; q < blocks.size(); ++q) tile(q, m0, bpack + k_start[q] * cols);
    } else {
      for (std::size_t q = 0; q < blocks.size(); ++q) {
        p.PackB(blocks[q], c0, c1 - c0, nr, bpack);
        for (int m0 = r0; m0 < r1; m0 += ks.mr) tile(q, m0, bpack);
      }
    }
  });
}

}  // namespace ganfleet
